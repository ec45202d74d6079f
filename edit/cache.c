/* The inversion cache (cache.h): a memory level and a disk level. */
#include "edit/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "util/atomic_file.h"

static const char magic[8] = {'I', 'E', 'I', 'N', 'V', 'C', '\r', '\n'};
#define BOM 0x01020304u

typedef struct mem_entry {
    ie_cache_key key;
    ie_cache_kind kind;
    void *data;
    size_t len;
    uint64_t used; /* tick of the last use */
} mem_entry;

struct ie_cache {
    GArray *mem; /* mem_entry */
    int64_t mem_cap, mem_used;
    uint64_t tick;
    char *dir;
    int64_t disk_cap;
};

ie_cache *ie_cache_new(int64_t mem_bytes, const char *dir, int64_t disk_bytes) {
    ie_cache *c = g_new0(ie_cache, 1);
    c->mem = g_array_new(FALSE, TRUE, sizeof(mem_entry));
    c->mem_cap = mem_bytes > 0 ? mem_bytes : 0;
    if (dir && *dir) {
        c->dir = g_strdup(dir);
        c->disk_cap = disk_bytes > 0 ? disk_bytes : 0;
    }
    return c;
}

void ie_cache_free(ie_cache *c) {
    if (!c) return;
    for (guint i = 0; i < c->mem->len; i++) g_free(g_array_index(c->mem, mem_entry, i).data);
    g_array_free(c->mem, TRUE);
    g_free(c->dir);
    g_free(c);
}

const char *ie_cache_dir(const ie_cache *c) { return c ? c->dir : NULL; }

char *ie_cache_default_dir(void) {
    const char *env = g_getenv("INVEDIT_CACHE_DIR");
    if (env && *env) return g_strdup(env);
    return g_build_filename(g_get_user_cache_dir(), "invedit", NULL);
}

int64_t ie_cache_default_disk_bytes(void) {
    const char *env = g_getenv("INVEDIT_CACHE_MB");
    if (env && *env) {
        char *end = NULL;
        gint64 mb = g_ascii_strtoll(env, &end, 10);
        if (end != env && !*end && mb >= 0 && mb < ((gint64)1 << 40)) return (int64_t)mb << 20;
    }
    return (int64_t)2048 << 20;
}

/* --- keys ----------------------------------------------------------------------------- */

static void key_field(GChecksum *ck, char tag, const char *name, const void *data, size_t len) {
    uint64_t n = len;
    g_checksum_update(ck, (const guchar *)&tag, 1);
    g_checksum_update(ck, (const guchar *)name, (gssize)strlen(name) + 1);
    g_checksum_update(ck, (const guchar *)&n, sizeof n);
    if (len) g_checksum_update(ck, (const guchar *)data, (gssize)len);
}

GChecksum *ie_cache_key_begin(const char *what) {
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    uint32_t v = IE_CACHE_VERSION;
    key_field(ck, 'V', "invedit-cache", &v, sizeof v);
    key_field(ck, 'W', "what", what, strlen(what));
    return ck;
}

void ie_cache_key_str(GChecksum *ck, const char *name, const char *value) {
    key_field(ck, 's', name, value ? value : "", value ? strlen(value) : 0);
}

void ie_cache_key_num(GChecksum *ck, const char *name, double value) { key_field(ck, 'd', name, &value, sizeof value); }

void ie_cache_key_int(GChecksum *ck, const char *name, int64_t value) {
    key_field(ck, 'i', name, &value, sizeof value);
}

void ie_cache_key_bytes(GChecksum *ck, const char *name, const void *data, size_t len) {
    /* the digest of the data, so a field is always 32 bytes */
    GChecksum *inner = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(inner, (const guchar *)data, (gssize)len);
    guint8 d[32];
    gsize dl = sizeof d;
    g_checksum_get_digest(inner, d, &dl);
    g_checksum_free(inner);
    uint64_t n = len;
    key_field(ck, 'n', name, &n, sizeof n);
    key_field(ck, 'b', name, d, dl);
}

void ie_cache_key_end(GChecksum *ck, ie_cache_key *key) {
    gsize dl = sizeof key->b;
    g_checksum_get_digest(ck, key->b, &dl);
    g_checksum_free(ck);
}

static void key_hex(const ie_cache_key *key, char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", key->b[i]);
}

/* One model file: name, size, mtime and (for .safetensors) its JSON header. */
static void identity_file(GChecksum *ck, const char *path, const char *name) {
    GStatBuf sb;
    if (g_stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) return;
    int64_t size = (int64_t)sb.st_size, mtime = (int64_t)sb.st_mtime;
    key_field(ck, 'f', "file", name, strlen(name));
    key_field(ck, 'z', "size", &size, sizeof size);
    key_field(ck, 't', "mtime", &mtime, sizeof mtime);
    FILE *f = fopen(path, "rb");
    if (!f) return;
    unsigned char head[8];
    size_t want = 65536;
    if (g_str_has_suffix(name, ".safetensors") && fread(head, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | head[i];
        want = n < ((uint64_t)16 << 20) ? (size_t)n : ((size_t)16 << 20);
        key_field(ck, 'h', "head", head, 8);
    }
    char *buf = g_malloc(want ? want : 1);
    size_t got = fread(buf, 1, want, f);
    key_field(ck, 'c', "content", buf, got);
    g_free(buf);
    fclose(f);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void identity_dir(GChecksum *ck, const char *dir, const char *rel, int depth) {
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d) return;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    const char *n;
    while ((n = g_dir_read_name(d))) g_ptr_array_add(names, g_strdup(n));
    g_dir_close(d);
    qsort(names->pdata, names->len, sizeof(char *), cmp_str);
    for (guint i = 0; i < names->len; i++) {
        const char *name = names->pdata[i];
        char *path = g_build_filename(dir, name, NULL);
        char *r = rel[0] ? g_strconcat(rel, "/", name, NULL) : g_strdup(name);
        if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
            if (depth > 0) identity_dir(ck, path, r, depth - 1);
        } else if (g_str_has_suffix(name, ".safetensors") || g_str_has_suffix(name, ".json") ||
                   g_str_has_suffix(name, ".txt")) {
            identity_file(ck, path, r);
        }
        g_free(r);
        g_free(path);
    }
    g_ptr_array_free(names, TRUE);
}

void ie_cache_model_identity(const char *path, char out[65]) {
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    char *real = path ? realpath(path, NULL) : NULL;
    const char *p = real ? real : path ? path : "";
    key_field(ck, 'p', "path", p, strlen(p));
    if (g_file_test(p, G_FILE_TEST_IS_DIR)) identity_dir(ck, p, "", 2);
    else identity_file(ck, p, "model");
    free(real);
    snprintf(out, 65, "%s", g_checksum_get_string(ck));
    g_checksum_free(ck);
}

/* --- memory level ----------------------------------------------------------------------- */

static mem_entry *mem_find(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind) {
    for (guint i = 0; i < c->mem->len; i++) {
        mem_entry *e = &g_array_index(c->mem, mem_entry, i);
        if (e->kind == kind && !memcmp(e->key.b, key->b, sizeof key->b)) return e;
    }
    return NULL;
}

static void mem_put(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, const void *data, size_t len) {
    if ((int64_t)len > c->mem_cap) return;
    mem_entry *old = mem_find(c, key, kind);
    if (old) {
        old->used = ++c->tick;
        return;
    }
    while (c->mem_used + (int64_t)len > c->mem_cap && c->mem->len) {
        guint oldest = 0;
        for (guint i = 1; i < c->mem->len; i++)
            if (g_array_index(c->mem, mem_entry, i).used < g_array_index(c->mem, mem_entry, oldest).used) oldest = i;
        mem_entry *e = &g_array_index(c->mem, mem_entry, oldest);
        c->mem_used -= (int64_t)e->len;
        g_free(e->data);
        g_array_remove_index_fast(c->mem, oldest);
    }
    mem_entry e = {*key, kind, g_memdup2(data, len), len, ++c->tick};
    g_array_append_val(c->mem, e);
    c->mem_used += (int64_t)len;
}

/* --- disk level -------------------------------------------------------------------------- */

static char *entry_path(const ie_cache *c, const ie_cache_key *key) {
    char hex[65];
    key_hex(key, hex);
    char *name = g_strconcat(hex, IE_CACHE_SUFFIX, NULL);
    char *p = g_build_filename(c->dir, name, NULL);
    g_free(name);
    return p;
}

static void put_u32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static void payload_digest(const void *data, size_t len, guint8 out[32]) {
    GChecksum *ck = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(ck, (const guchar *)data, (gssize)len);
    gsize dl = 32;
    g_checksum_get_digest(ck, out, &dl);
    g_checksum_free(ck);
}

/* Reads and checks one entry; false (and the file removed) when it is not a
 * valid entry for key. */
static bool disk_get(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, void **data, size_t *len) {
    char *path = entry_path(c, key);
    gchar *buf = NULL;
    gsize n = 0;
    bool ok = false;
    if (!g_file_get_contents(path, &buf, &n, NULL)) {
        g_free(path);
        return false;
    }
    const unsigned char *h = (const unsigned char *)buf;
    if (n >= IE_CACHE_HEADER && !memcmp(h, magic, 8) && get_u32(h + 8) == IE_CACHE_VERSION && get_u32(h + 12) == BOM &&
        get_u32(h + 16) == (uint32_t)kind && !memcmp(h + 24, key->b, 32) &&
        get_u64(h + 56) == (uint64_t)(n - IE_CACHE_HEADER)) {
        guint8 d[32];
        payload_digest(h + IE_CACHE_HEADER, n - IE_CACHE_HEADER, d);
        ok = !memcmp(d, h + 64, 32);
    }
    if (ok) {
        *len = n - IE_CACHE_HEADER;
        *data = g_memdup2(h + IE_CACHE_HEADER, *len);
        utimensat(AT_FDCWD, path, NULL, 0); /* least recently used goes first: a hit is a use */
    } else {
        g_unlink(path); /* corrupt, truncated, foreign or from another version: never trusted */
    }
    g_free(buf);
    g_free(path);
    return ok;
}

typedef struct disk_file {
    char *path;
    int64_t size;
    struct timespec mtime;
} disk_file;

static int cmp_mtime(const void *a, const void *b) {
    const disk_file *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec) return x->mtime.tv_sec < y->mtime.tv_sec ? -1 : 1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec) return x->mtime.tv_nsec < y->mtime.tv_nsec ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* The entries in the folder (only our own *.iec files). */
static GArray *disk_list(const ie_cache *c) {
    GArray *a = g_array_new(FALSE, TRUE, sizeof(disk_file));
    GDir *d = c->dir ? g_dir_open(c->dir, 0, NULL) : NULL;
    if (!d) return a;
    const char *n;
    time_t now = time(NULL);
    while ((n = g_dir_read_name(d))) {
        if (n[0] == '.' && g_str_has_suffix(n, ".part")) {
            /* a writer killed mid-entry (util/atomic_file.h's temporary): gone after an hour */
            char *p = g_build_filename(c->dir, n, NULL);
            struct stat sb;
            if (stat(p, &sb) == 0 && S_ISREG(sb.st_mode) && now - sb.st_mtime > 3600) g_unlink(p);
            g_free(p);
            continue;
        }
        if (!g_str_has_suffix(n, IE_CACHE_SUFFIX) || n[0] == '.') continue;
        disk_file f = {g_build_filename(c->dir, n, NULL), 0, {0, 0}};
        struct stat sb;
        if (stat(f.path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            g_free(f.path);
            continue;
        }
        f.size = (int64_t)sb.st_size;
        f.mtime = sb.st_mtim;
        g_array_append_val(a, f);
    }
    g_dir_close(d);
    return a;
}

static void disk_list_free(GArray *a) {
    for (guint i = 0; i < a->len; i++) g_free(g_array_index(a, disk_file, i).path);
    g_array_free(a, TRUE);
}

int64_t ie_cache_disk_usage(const ie_cache *c) {
    GArray *a = disk_list(c);
    int64_t total = 0;
    for (guint i = 0; i < a->len; i++) total += g_array_index(a, disk_file, i).size;
    disk_list_free(a);
    return total;
}

void ie_cache_evict(ie_cache *c) {
    if (!c || !c->dir) return;
    GArray *a = disk_list(c);
    int64_t total = 0;
    for (guint i = 0; i < a->len; i++) total += g_array_index(a, disk_file, i).size;
    g_array_sort(a, cmp_mtime);
    for (guint i = 0; i < a->len && total > c->disk_cap; i++) {
        disk_file *f = &g_array_index(a, disk_file, i);
        if (g_unlink(f->path) == 0 || errno == ENOENT) total -= f->size;
    }
    disk_list_free(a);
}

static void disk_put(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, const void *data, size_t len) {
    if ((int64_t)(len + IE_CACHE_HEADER) > c->disk_cap) return;
    if (g_mkdir_with_parents(c->dir, 0700) != 0) return;
    unsigned char h[IE_CACHE_HEADER];
    memset(h, 0, sizeof h);
    memcpy(h, magic, 8);
    put_u32(h + 8, IE_CACHE_VERSION);
    put_u32(h + 12, BOM);
    put_u32(h + 16, (uint32_t)kind);
    memcpy(h + 24, key->b, 32);
    put_u64(h + 56, (uint64_t)len);
    payload_digest(data, len, h + 64);
    char *path = entry_path(c, key);
    char err[512];
    ie_afile f;
    if (ie_afile_open(&f, path, err, sizeof err)) {
        if (fwrite(h, 1, sizeof h, f.fp) == sizeof h && fwrite(data, 1, len, f.fp) == len)
            ie_afile_commit(&f, err, sizeof err);
        else ie_afile_abort(&f);
    }
    g_free(path);
    ie_cache_evict(c);
}

/* --- both levels ------------------------------------------------------------------------- */

bool ie_cache_get(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, void **data, size_t *len) {
    *data = NULL;
    *len = 0;
    if (!c) return false;
    mem_entry *e = mem_find(c, key, kind);
    if (e) {
        e->used = ++c->tick;
        *data = g_memdup2(e->data, e->len);
        *len = e->len;
        return true;
    }
    if (c->dir && disk_get(c, key, kind, data, len)) {
        mem_put(c, key, kind, *data, *len);
        return true;
    }
    return false;
}

void ie_cache_put(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, const void *data, size_t len) {
    if (!c) return;
    mem_put(c, key, kind, data, len);
    if (c->dir) disk_put(c, key, kind, data, len);
}

/* --- EF-DDPM maps ----------------------------------------------------------------------- */

/* int32 n, c, h, w, grid_offset, z1_kept; double eta; int32 tau[n+1];
 * float xts[(n+1) chw]; float zs[n chw] */
void *ie_cache_pack_ef_ddpm(const ef_ddpm_maps *m, size_t *len) {
    size_t chw = (size_t)m->c * m->h * m->w;
    size_t n = 6 * 4 + 8 + ((size_t)m->n + 1) * 4 + ((size_t)m->n + 1) * chw * 4 + (size_t)m->n * chw * 4;
    unsigned char *b = g_malloc(n), *p = b;
    int32_t hdr[6] = {m->n, m->c, m->h, m->w, m->grid_offset, m->z1_kept};
    memcpy(p, hdr, sizeof hdr), p += sizeof hdr;
    memcpy(p, &m->eta, 8), p += 8;
    for (int k = 0; k <= m->n; k++) {
        int32_t t = m->tau[k];
        memcpy(p, &t, 4), p += 4;
    }
    memcpy(p, m->xts, ((size_t)m->n + 1) * chw * 4), p += ((size_t)m->n + 1) * chw * 4;
    memcpy(p, m->zs, (size_t)m->n * chw * 4);
    *len = n;
    return b;
}

ef_ddpm_maps *ie_cache_unpack_ef_ddpm(const void *data, size_t len) {
    const unsigned char *p = data;
    int32_t hdr[6];
    if (len < sizeof hdr + 8) return NULL;
    memcpy(hdr, p, sizeof hdr), p += sizeof hdr;
    for (int i = 0; i < 4; i++)
        if (hdr[i] < 1 || hdr[i] > 100000) return NULL;
    size_t chw = (size_t)hdr[1] * hdr[2] * hdr[3], n = (size_t)hdr[0];
    if (chw > ((size_t)1 << 28)) return NULL;
    size_t want = sizeof hdr + 8 + (n + 1) * 4 + (n + 1) * chw * 4 + n * chw * 4;
    if (want != len) return NULL;
    ef_ddpm_maps *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->n = hdr[0], m->c = hdr[1], m->h = hdr[2], m->w = hdr[3], m->grid_offset = hdr[4], m->z1_kept = hdr[5] != 0;
    memcpy(&m->eta, p, 8), p += 8;
    m->tau = calloc(n + 1, sizeof *m->tau);
    m->xts = malloc((n + 1) * chw * sizeof(float));
    m->zs = malloc(n * chw * sizeof(float));
    if (!m->tau || !m->xts || !m->zs) {
        ef_ddpm_maps_free(m);
        return NULL;
    }
    for (size_t k = 0; k <= n; k++) {
        int32_t t;
        memcpy(&t, p, 4), p += 4;
        m->tau[k] = t;
    }
    memcpy(m->xts, p, (n + 1) * chw * 4), p += (n + 1) * chw * 4;
    memcpy(m->zs, p, n * chw * 4);
    return m;
}
