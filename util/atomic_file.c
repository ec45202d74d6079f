#include "util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Temporary paths still open, for ie_afile_remove_pending. A slot is claimed
 * with a compare-and-swap on `used`; the path is written before `used` is set
 * to 2 (ready), so a handler only reads complete paths. */
#define PENDING_MAX 64
static struct {
    volatile sig_atomic_t used; /* 0 free, 1 claimed, 2 ready */
    char path[PATH_MAX];
} pending[PENDING_MAX];

static int pending_add(const char *path) {
    if (strlen(path) >= PATH_MAX) return -1;
    for (int i = 0; i < PENDING_MAX; i++) {
        if (__sync_bool_compare_and_swap(&pending[i].used, 0, 1)) {
            strcpy(pending[i].path, path);
            __sync_synchronize();
            pending[i].used = 2;
            return i;
        }
    }
    return -1;
}

static void pending_drop(int slot) {
    if (slot < 0) return;
    pending[slot].used = 1;
    __sync_synchronize();
    pending[slot].path[0] = 0;
    pending[slot].used = 0;
}

void ie_afile_remove_pending(void) {
    for (int i = 0; i < PENDING_MAX; i++)
        if (pending[i].used == 2) unlink(pending[i].path);
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *path, const char *why) {
    if (err && errlen) snprintf(err, errlen, fmt, path, why);
}

static void release(ie_afile *f) {
    g_free(f->path);
    g_free(f->final);
    g_free(f->tmp);
    f->path = f->final = f->tmp = NULL;
    f->fp = NULL;
    f->slot = -1;
}

bool ie_afile_check_writable(const char *path, char *err, size_t errlen) {
    if (!path || !*path) {
        set_err(err, errlen, "%s%s", "", "empty output path");
        return false;
    }
    if (!strcmp(path, "-")) return true;
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            set_err(err, errlen, "%s: %s", path, "is a directory, not a file");
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            if (access(path, W_OK) != 0) {
                set_err(err, errlen, "%s: cannot write (%s)", path, strerror(errno));
                return false;
            }
            return true;
        }
    }
    /* The rename happens in the directory of the (link-resolved) target. */
    char *real = realpath(path, NULL);
    char *dir = g_path_get_dirname(real ? real : path);
    free(real);
    bool ok = true;
    if (stat(dir, &st) != 0) {
        set_err(err, errlen, "%s: the output folder does not exist (%s)", path, strerror(errno));
        ok = false;
    } else if (!S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s: %s", path, "the output folder is not a directory");
        ok = false;
    } else if (access(dir, W_OK | X_OK) != 0) {
        set_err(err, errlen, "%s: cannot write into the output folder (%s)", path, strerror(errno));
        ok = false;
    }
    g_free(dir);
    return ok;
}

bool ie_afile_open(ie_afile *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    f->slot = -1;
    if (!path || !*path) {
        set_err(err, errlen, "%s%s", "", "empty output path");
        return false;
    }
    f->path = g_strdup(path);
    if (!strcmp(path, "-")) {
        f->fp = stdout;
        return true;
    }
    struct stat st;
    bool exists = stat(path, &st) == 0; /* follows symlinks */
    if (exists && S_ISDIR(st.st_mode)) {
        set_err(err, errlen, "%s: %s", path, "is a directory, not a file");
        release(f);
        return false;
    }
    if (exists && !S_ISREG(st.st_mode)) {
        /* /dev/null, a FIFO, a terminal: no rename possible, write through */
        f->fp = fopen(path, "wb");
        if (!f->fp) {
            set_err(err, errlen, "%s: cannot open for writing (%s)", path, strerror(errno));
            release(f);
            return false;
        }
        return true;
    }
    char *real = exists ? realpath(path, NULL) : NULL;
    if (!exists) {
        /* A dangling symlink: write where it points, keep the link. */
        char *target = g_file_read_link(path, NULL);
        if (target && !g_path_is_absolute(target)) {
            char *d = g_path_get_dirname(path);
            char *t = g_build_filename(d, target, NULL);
            g_free(d);
            g_free(target);
            target = t;
        }
        f->final = target;
    }
    if (!f->final) f->final = g_strdup(real ? real : path);
    free(real);
    char *dir = g_path_get_dirname(f->final);
    char *base = g_path_get_basename(f->final);
    f->tmp = g_strdup_printf("%s/.%s.XXXXXX.part", dir, base);
    g_free(dir);
    g_free(base);
    /* Block signals between creating the file and recording it. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int fd = mkstemps(f->tmp, 5);
    if (fd >= 0) f->slot = pending_add(f->tmp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        int e = errno;
        set_err(err, errlen, "%s: cannot create a file in its folder (%s)", path, strerror(e));
        release(f);
        return false;
    }
    mode_t mode;
    if (exists) {
        mode = st.st_mode & 07777;
    } else {
        mode_t mask = umask(0);
        umask(mask);
        mode = 0666 & ~mask;
    }
    (void)fchmod(fd, mode);
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        int e = errno;
        close(fd);
        ie_afile_abort(f);
        set_err(err, errlen, "%s: %s", path, strerror(e));
        return false;
    }
    return true;
}

void ie_afile_abort(ie_afile *f) {
    if (!f) return;
    if (f->fp && f->fp != stdout) fclose(f->fp);
    f->fp = NULL;
    if (f->tmp) {
        unlink(f->tmp);
        pending_drop(f->slot);
    }
    release(f);
}

bool ie_afile_commit(ie_afile *f, char *err, size_t errlen) {
    if (!f->fp) {
        set_err(err, errlen, "%s: %s", f->path ? f->path : "", "not open");
        release(f);
        return false;
    }
    if (f->fp == stdout) {
        bool ok = fflush(stdout) == 0 && !ferror(stdout);
        if (!ok) set_err(err, errlen, "%s: write failed (%s)", "standard output", strerror(errno));
        release(f);
        return ok;
    }
    errno = 0;
    bool ok = fflush(f->fp) == 0 && !ferror(f->fp);
    int e = errno ? errno : EIO; /* ferror() from an earlier write keeps no errno */
    if (ok && f->tmp && fsync(fileno(f->fp)) != 0) {
        ok = false;
        e = errno;
    }
    if (fclose(f->fp) != 0 && ok) {
        ok = false;
        e = errno;
    }
    f->fp = NULL;
    if (!ok) {
        set_err(err, errlen, "%s: write failed (%s); the file was not changed", f->path, strerror(e));
        ie_afile_abort(f);
        return false;
    }
    if (!f->tmp) { /* written directly */
        release(f);
        return true;
    }
    if (rename(f->tmp, f->final) != 0) {
        e = errno;
        set_err(err, errlen, "%s: cannot replace the file (%s)", f->path, strerror(e));
        ie_afile_abort(f);
        return false;
    }
    pending_drop(f->slot);
    /* Make the rename itself durable. */
    char *dir = g_path_get_dirname(f->final);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    g_free(dir);
    release(f);
    return true;
}
