/* util/atomic_file: a committed write replaces the target; an aborted or
 * failed one (write error, file-size limit) leaves the old file byte for byte
 * and no temporary file; symlinks are kept and their target replaced; special
 * files (/dev/null, a FIFO) are written directly; permissions are kept;
 * ie_afile_remove_pending removes pending temporaries; ie_afile_check_writable
 * reports a missing folder and a directory target. */
#include "util/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int failures, checks;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
        }                                                                                                              \
    } while (0)

static char dir[256];

static char *path_in(const char *name) { return g_build_filename(dir, name, NULL); }

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        perror(path);
        exit(2);
    }
}

static char *get(const char *path) {
    char *s = NULL;
    if (!g_file_get_contents(path, &s, NULL, NULL)) return g_strdup("<missing>");
    return s;
}

/* Number of entries in dir other than . and .. */
static int entries(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static bool write_text(const char *path, const char *text, bool commit, char *err, size_t errlen) {
    ie_afile f;
    if (!ie_afile_open(&f, path, err, errlen)) return false;
    fputs(text, f.fp);
    if (!commit) {
        ie_afile_abort(&f);
        return false;
    }
    return ie_afile_commit(&f, err, errlen);
}

static void test_commit_abort(void) {
    char err[512];
    char *p = path_in("a.txt");
    put(p, "old");
    CHECK(write_text(p, "new contents", true, err, sizeof err), "commit: %s", err);
    char *s = get(p);
    CHECK(!strcmp(s, "new contents"), "commit replaced the file: got '%s'", s);
    g_free(s);
    CHECK(entries() == 1, "no temporary left after commit (%d entries)", entries());

    write_text(p, "aborted", false, err, sizeof err);
    s = get(p);
    CHECK(!strcmp(s, "new contents"), "abort keeps the old file: got '%s'", s);
    g_free(s);
    CHECK(entries() == 1, "no temporary left after abort (%d entries)", entries());

    /* a temporary exists while the write is open, and only then */
    ie_afile f;
    CHECK(ie_afile_open(&f, p, err, sizeof err), "open: %s", err);
    CHECK(f.tmp && entries() == 2, "the temporary file is in the target's folder");
    s = get(p);
    CHECK(!strcmp(s, "new contents"), "the target is untouched while writing");
    g_free(s);
    ie_afile_abort(&f);
    ie_afile_abort(&f); /* twice is harmless */
    CHECK(entries() == 1, "abort removed the temporary");

    /* a new file */
    char *q = path_in("new.txt");
    CHECK(write_text(q, "fresh", true, err, sizeof err), "new file: %s", err);
    s = get(q);
    CHECK(!strcmp(s, "fresh"), "new file written: '%s'", s);
    g_free(s);
    unlink(q);
    unlink(p);
    g_free(q);
    g_free(p);
}

static void test_permissions(void) {
    char err[512];
    char *p = path_in("perm.txt");
    put(p, "old");
    chmod(p, 0640);
    CHECK(write_text(p, "new", true, err, sizeof err), "commit: %s", err);
    struct stat st;
    stat(p, &st);
    CHECK((st.st_mode & 07777) == 0640, "permissions kept: %o", st.st_mode & 07777);
    unlink(p);
    g_free(p);

    /* a new file gets 0666 & ~umask, like fopen */
    mode_t old = umask(022);
    p = path_in("fresh.txt");
    CHECK(write_text(p, "x", true, err, sizeof err), "commit: %s", err);
    stat(p, &st);
    CHECK((st.st_mode & 07777) == 0644, "new file mode 0644 under umask 022: %o", st.st_mode & 07777);
    umask(old);
    unlink(p);
    g_free(p);
}

static void test_symlink(void) {
    char err[512];
    char *target = path_in("target.txt"), *link = path_in("link.txt");
    put(target, "old");
    CHECK(symlink("target.txt", link) == 0, "symlink");
    CHECK(write_text(link, "through the link", true, err, sizeof err), "commit via link: %s", err);
    struct stat st;
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the symlink is still a symlink");
    char *s = get(target);
    CHECK(!strcmp(s, "through the link"), "the link's target was replaced: '%s'", s);
    g_free(s);
    unlink(link);
    unlink(target);
    /* dangling link: the file is created where it points */
    CHECK(symlink("made.txt", link) == 0, "symlink");
    CHECK(write_text(link, "made", true, err, sizeof err), "commit via dangling link: %s", err);
    CHECK(lstat(link, &st) == 0 && S_ISLNK(st.st_mode), "the dangling symlink is kept");
    char *made = path_in("made.txt");
    s = get(made);
    CHECK(!strcmp(s, "made"), "the dangling link's target was created: '%s'", s);
    g_free(s);
    unlink(made);
    unlink(link);
    g_free(made);
    g_free(target);
    g_free(link);
    CHECK(entries() == 0, "nothing left (%d entries)", entries());
}

static void test_special(void) {
    char err[512];
    ie_afile f;
    CHECK(ie_afile_open(&f, "/dev/null", err, sizeof err), "/dev/null: %s", err);
    CHECK(f.tmp == NULL, "/dev/null is written directly");
    fputs("discarded", f.fp);
    CHECK(ie_afile_commit(&f, err, sizeof err), "/dev/null commit: %s", err);
    struct stat st;
    CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode), "/dev/null is still a device");

    char *fifo = path_in("fifo");
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    pid_t pid = fork();
    if (pid == 0) { /* reader */
        char *s = get(fifo);
        _exit(strcmp(s, "through the fifo") ? 1 : 0);
    }
    CHECK(ie_afile_open(&f, fifo, err, sizeof err), "fifo: %s", err);
    CHECK(f.tmp == NULL, "a FIFO is written directly");
    fputs("through the fifo", f.fp);
    CHECK(ie_afile_commit(&f, err, sizeof err), "fifo commit: %s", err);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader got the data through the FIFO");
    CHECK(lstat(fifo, &st) == 0 && S_ISFIFO(st.st_mode), "the FIFO is still a FIFO");
    unlink(fifo);
    g_free(fifo);
    CHECK(entries() == 0, "nothing left (%d entries)", entries());

    CHECK(ie_afile_check_writable("-", err, sizeof err), "'-' is writable");
    CHECK(ie_afile_check_writable("/dev/null", err, sizeof err), "/dev/null is writable");
}

/* A write beyond RLIMIT_FSIZE fails (EFBIG, SIGXFSZ ignored): the old file
 * stays, the temporary is gone, the error says so. In a child process. */
static void test_write_failure(void) {
    char *p = path_in("big.bin");
    put(p, "the old file");
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {4096, 4096};
        setrlimit(RLIMIT_FSIZE, &rl);
        char err[512] = "";
        ie_afile f;
        if (!ie_afile_open(&f, p, err, sizeof err)) _exit(10);
        static char block[1 << 16];
        memset(block, 'x', sizeof block);
        fwrite(block, 1, sizeof block, f.fp);
        bool ok = ie_afile_commit(&f, err, sizeof err);
        printf("  write over the size limit: %s\n", ok ? "succeeded?!" : err);
        _exit(ok ? 11 : (strstr(err, "big.bin") && strstr(err, "not changed") ? 0 : 12));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "commit over RLIMIT_FSIZE fails with a message (child %d)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    char *s = get(p);
    CHECK(!strcmp(s, "the old file"), "the old file survives a failed write: '%.20s'", s);
    g_free(s);
    CHECK(entries() == 1, "no temporary left after a failed write (%d entries)", entries());
    unlink(p);
    g_free(p);
}

/* A process killed while writing: the handler's ie_afile_remove_pending
 * leaves the old file and no temporary. */
static void on_term(int sig) {
    ie_afile_remove_pending();
    _exit(128 + sig);
}

static void test_signal(void) {
    char *p = path_in("sig.txt");
    put(p, "before");
    int pipefd[2];
    if (pipe(pipefd)) exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, on_term);
        char err[512];
        ie_afile f;
        if (!ie_afile_open(&f, p, err, sizeof err)) _exit(10);
        fputs("half written", f.fp);
        fflush(f.fp);
        if (write(pipefd[1], "r", 1) != 1) _exit(11);
        for (;;) pause();
    }
    char c;
    CHECK(read(pipefd[0], &c, 1) == 1, "child ready");
    CHECK(entries() == 2, "the child's temporary exists (%d entries)", entries());
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM, "child ended by its handler");
    char *s = get(p);
    CHECK(!strcmp(s, "before"), "the old file survives SIGTERM: '%s'", s);
    g_free(s);
    CHECK(entries() == 1, "the handler removed the temporary (%d entries)", entries());
    close(pipefd[0]);
    close(pipefd[1]);
    unlink(p);
    g_free(p);
}

static void test_check_writable(void) {
    char err[512];
    char *p = path_in("no/such/folder/out.png");
    CHECK(!ie_afile_check_writable(p, err, sizeof err) && strstr(err, "does not exist"), "missing folder reported: %s",
          err);
    CHECK(!ie_afile_open(&(ie_afile){0}, p, err, sizeof err), "open in a missing folder fails");
    g_free(p);
    CHECK(!ie_afile_check_writable(dir, err, sizeof err) && strstr(err, "directory"), "a directory target: %s", err);
    ie_afile f;
    CHECK(!ie_afile_open(&f, dir, err, sizeof err), "open of a directory fails: %s", err);
    p = path_in("ok.png");
    CHECK(ie_afile_check_writable(p, err, sizeof err), "a new file in an existing folder: %s", err);
    g_free(p);
    CHECK(entries() == 0, "nothing left (%d entries)", entries());
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/ie-afile-XXXXXX", g_get_tmp_dir());
    if (!g_mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_commit_abort();
    test_permissions();
    test_symlink();
    test_special();
    test_write_failure();
    test_signal();
    test_check_writable();
    rmdir(dir);
    printf("%d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
