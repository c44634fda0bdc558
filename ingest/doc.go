// Package ingest holds the ingest types, and no behaviour that talks to
// Kafka or runs a parser: what a poll stores (batches of containers and
// their artifacts, as SOAR REST bodies, with the Kafka position they were
// read up to), where each asset's poll stands (the next offset per
// partition, the lease, the gaps retention left, the last poll's record),
// the queries of the containers API, and the Repository interface the store
// implements.
//
// ingest is the model; package poll is the engine that fills it (reads the
// topic, runs the parser, stores each batch through Repository). Both the
// store and the web layer depend on these types without depending on the
// engine.
package ingest
