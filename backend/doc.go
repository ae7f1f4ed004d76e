// Package backend defines the storage contract of Stent: the Backend interface every
// store implements (SQLite, PostgreSQL), and the types that cross it: executions, their
// append-only event history, pinned script files and the tasks workers claim.
//
// A backend owns durability and atomicity: each method that changes state does so in
// one transaction. It must not interpret scripts or run activities; that is the
// worker's job (root package stent and package interpreter).
//
// Package backend also holds the decisions every store shares (which executions a
// prune removes, how a stored row becomes a Schedule or a DeadLetter, ...), so that
// each store keeps only its SQL. It imports only the standard library: every other
// Stent package may import it, and it imports none of them.
package backend
