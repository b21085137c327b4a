/* state.c - the state directory (see state.h). */
#include "state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LOG_TARGET "bore::state"
#include "log.h"

/* mkdir -p, each new level 0700. */
static int make_dirs(char *path)
{
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        int rc = mkdir(path, 0700);
        int err = errno;
        *p = c;
        if (rc != 0 && err != EEXIST) {
            log_error("cannot create the state directory %s: %s", path, strerror(err));
            return -1;
        }
        if (c == '\0') return 0;
    }
}

int state_dir(const char *override, char *out, size_t cap)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (override && *override)
        n = snprintf(out, cap, "%s", override);
    else if (xdg && xdg[0] == '/')
        n = snprintf(out, cap, "%s/bore", xdg);
    else if (home && *home)
        n = snprintf(out, cap, "%s/.local/state/bore", home);
    else {
        log_error("no state directory: HOME is not set (give --state-dir)");
        return -1;
    }
    if (n < 0 || (size_t)n >= cap) {
        log_error("the state directory's path is too long");
        return -1;
    }
    while (n > 1 && out[n - 1] == '/') out[--n] = '\0';
    if (out[0] != '/') {
        char *abs = realpath(".", NULL);
        if (abs == NULL) return log_error("cannot resolve the current directory: %s", strerror(errno)), -1;
        char rel[STATE_PATH_MAX];
        snprintf(rel, sizeof rel, "%s", out);
        n = snprintf(out, cap, "%s/%s", abs, rel);
        free(abs);
        if (n < 0 || (size_t)n >= cap) return log_error("the state directory's path is too long"), -1;
    }
    return make_dirs(out);
}

int state_path(const char *dir, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int state_write(const char *dir, const char *name, const void *data, size_t n, mode_t mode)
{
    char path[STATE_PATH_MAX], tmp[STATE_PATH_MAX + 16];
    if (state_path(dir, name, path, sizeof path) != 0) return log_error("state file path too long"), -1;
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) return log_error("cannot write %s: %s", path, strerror(errno)), -1;
    const char *p = data;
    size_t left = n;
    int ok = fchmod(fd, mode) == 0;
    while (ok && left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) ok = 0;
        else p += w, left -= (size_t)w;
    }
    ok = ok && fsync(fd) == 0;
    int err = errno;
    if (close(fd) != 0) ok = 0;
    if (ok && rename(tmp, path) == 0) return 0;
    if (ok) err = errno;
    unlink(tmp);
    log_error("cannot write %s: %s", path, strerror(err));
    return -1;
}

int state_read(const char *dir, const char *name, size_t max, char **data, size_t *n)
{
    char path[STATE_PATH_MAX];
    if (state_path(dir, name, path, sizeof path) != 0) return log_error("state file path too long"), -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 1;
        return log_error("cannot read %s: %s", path, strerror(errno)), -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > max) {
        close(fd);
        return log_error("cannot read %s: not a regular file of at most %zu bytes", path, max), -1;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL || got != (size_t)st.st_size) {
        free(buf);
        return log_error("cannot read %s", path), -1;
    }
    buf[got] = '\0';
    *data = buf;
    *n = got;
    return 0;
}
