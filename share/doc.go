// Package share implements the energy-commons protocol: household
// identities (Ed25519 keys), the signed message envelope, message kinds and
// their content rules, per-author hash chains with fork detection, invite
// strings, community manifests and settlement slots, the pledge lifecycle
// and settlement of pledges against measured meter data.
//
// The package is pure: it does no I/O except reading and writing the
// identity key file, and it keeps no database. docs/PROTOCOL.md is the
// specification this package implements.
package share
