// Package integrations holds the platform-side pieces that drive soarkafka
// from a SOAR: the Splunk SOAR app (splunk_soar/) and the Cortex XSOAR
// integration (xsoar/), both Python, and builds their installable packages.
//
// The SOAR platforms run only apps installed on them; these are those apps.
// Their tests run the real Python code against a real soarkafka process
// (internal/testenv.StartSoarkafka) with stand-ins for the platforms'
// Python modules.
package integrations
