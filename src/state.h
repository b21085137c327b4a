/* state.h - the state directory: files bore keeps between runs (the
 * kafka-proxy's generated CA, its last public ports).
 *
 * Where: the --state-dir given, else $XDG_STATE_HOME/bore, else
 * $HOME/.local/state/bore. Created on first use with mode 0700 (parents as
 * needed). Files are replaced atomically (a temporary file in the same
 * directory, fsync, rename), so a crash leaves the old file or the new one,
 * never half of either. */
#ifndef BORE_STATE_H
#define BORE_STATE_H

#include <stddef.h>
#include <sys/types.h>

#define STATE_PATH_MAX 4096

/* Resolves the directory into out (cap bytes) and creates it. `override`:
 * --state-dir, or NULL. Returns 0, or -1 after logging why. */
int state_dir(const char *override, char *out, size_t cap);

/* Joins dir and name into out. Returns 0, or -1 if it does not fit. */
int state_path(const char *dir, const char *name, char *out, size_t cap);

/* Replaces dir/name with data (n bytes), created with `mode` (e.g. 0600).
 * Returns 0, or -1 after logging why. */
int state_write(const char *dir, const char *name, const void *data, size_t n, mode_t mode);

/* Reads dir/name, at most `max` bytes, into a NUL-terminated buffer the
 * caller frees. Returns 0; 1 if the file does not exist; -1 after logging
 * why (unreadable, larger than max). */
int state_read(const char *dir, const char *name, size_t max, char **data, size_t *n);

#endif
