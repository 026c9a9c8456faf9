// Package config reads carrel's TOML configuration strictly and says
// everything that is wrong with it.
//
// It owns the shape of the file: the version key, the sections, defaults,
// value formats (durations such as "28d", sizes such as "16MiB") and the
// rules that a value must obey on its own. It does not judge misuse cases:
// a [[case]] table is decoded here, and any problem found while decoding it
// is attached to that case (Case.Problems) instead of rejecting the whole
// file, so that a broken case switches capture off rather than leaving an
// older config with an active case in force. Whether a case may capture is
// decided only by package misuse.
//
// It also judges that the config file, the data folder and the API
// socket's folder cannot be written, or replaced through a link or a
// folder on the way to them, by accounts other than root (Administrators)
// and the service's own, because whoever can edit the config can declare a
// case. Load judges, reads and digests one opened file, so no caller can
// use a config that was not checked; OpenDataDir judges the data folder
// and holds it, and files in it are opened through it (DataDir.Path).
//
// It must not import any package that stores bookings or traffic.
package config
