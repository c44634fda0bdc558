"""A stand-in for Splunk SOAR's `phantom` package, for the tests of the
soarkafka app only (it is never packaged). See base_connector.py for the
platform rules it enforces and where each is documented."""
