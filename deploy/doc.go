// Package deploy holds the files that run soarkafka on more than one
// machine: the Helm chart under helm/soarkafka and compose.yaml for three
// replicas on one host. It has no code; its tests render the chart with
// helm and read the compose file, so that what they deploy stays what the
// server reads (its probes' routes, its configuration keys, PostgreSQL for
// more than one replica).
package deploy
