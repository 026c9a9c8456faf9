// Package keyfile writes the small files carrel's state rests on — keys
// (the patron HMAC key, the audit signing key, the head librarian's age
// identity) and markers (the run marker) — whole or not at all. The CLI
// writes the files it makes for people with it too: a new config, and a
// report filed with --out.
//
// A file made in two steps (create, then write) and interrupted between
// them by a crash, a kill or a power loss is left empty, and an empty key
// is worse than none: a new one would orphan everything made with the old.
// So the content is written to a temporary file beside the target, synced,
// and only then given its name, and the folder is synced: at every moment
// the target is either absent or whole. Create never replaces a file that
// is there (not even through a symlink): two processes creating one key at
// once end up with the same key, the first one's.
//
// It holds no knowledge of what the files mean and imports no carrel
// package.
package keyfile
