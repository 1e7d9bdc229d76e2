// Package validation holds process-level tests of the produce path's
// record validation against a real samsa broker: hostile batches
// (compression bombs) sent in parallel over real sockets must be refused
// without the broker's memory growing, and healthy clients must still be
// served.
package validation
