// Package poll is the on poll engine: reading an asset's topic from where
// its last poll stopped, turning the messages into containers and artifacts
// with the asset's parser, and storing them with the new position in one
// transaction per batch, so that a crash at any point loses nothing and
// duplicates nothing. It also owns what keeps that true in production: one
// poll per asset at a time (a lease in the database, fencing every write),
// gaps left by retention recorded rather than skipped, poison messages found
// by splitting the batch and dead-lettered or stopped at, and the scheduler
// that polls every scheduled asset at its interval.
//
// The types it reads and writes (batches, positions, leases, the ingest
// status) live in package ingest, so that the store and the web layer can
// use them without the engine; poll only runs them.
package poll
