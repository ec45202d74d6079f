/* The inversion cache (edit/cache.h) on the demo model, CPU backend:
 *   - whole edits are bit-identical with the cache off, filling it, from its
 *     memory level and from its disk level (a new session), for all three
 *     methods, and for a second target (the point of the cache);
 *   - a changed source prompt, seed or step count misses;
 *   - corrupt, truncated and foreign disk entries are ignored (the edit is
 *     still bit-identical), removed and replaced by a valid entry;
 *   - the disk level stays under its cap, evicting the least recently used
 *     entry first.
 * The model is models/demo (or INVEDIT_TEST_MODEL). */
#include <glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "edit/cache.h"
#include <invedit.h>

static const char *SRC = "a red circle on the left on a blue background";
static const char *TGT_A = "a yellow circle on the left on a blue background";
static const char *TGT_B = "a red square on the left on a blue background";

static int fails = 0;
#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fails++;                                                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
        }                                                                                                              \
    } while (0)

static const char *model_path(void) {
    static char buf[4096];
    const char *m = getenv("INVEDIT_TEST_MODEL");
    if (m) return m;
    const char *root = getenv("INVEDIT_SOURCE_ROOT");
    snprintf(buf, sizeof buf, "%s/models/demo", root ? root : ".");
    return buf;
}

static ie_session *open_session(const char *dir) {
    char err[1024];
    ie_session *s = NULL;
    if (ie_session_open(model_path(), "cpu", &s, err, sizeof err)) {
        fprintf(stderr, "cannot open %s: %s\n", model_path(), err);
        exit(1);
    }
    ie_session_set_cache(s, (int64_t)64 << 20, dir, (int64_t)256 << 20);
    return s;
}

/* A 72x56 test card (not the working size: the resize is part of what is cached) */
static void make_input(ie_image *img) {
    ie_image_alloc(img, 72, 56, 4);
    for (int y = 0; y < 56; y++)
        for (int x = 0; x < 72; x++) {
            float *p = img->pixels + ((size_t)y * 72 + x) * 4;
            double dx = x - 22, dy = y - 28;
            bool disc = dx * dx + dy * dy < 12 * 12;
            p[0] = disc ? 0.85f : 0.1f;
            p[1] = disc ? 0.1f : 0.15f + 0.003f * (float)y;
            p[2] = disc ? 0.1f : 0.8f;
            p[3] = 1.0f - 0.002f * (float)x;
        }
}

static void params_for(ie_edit_params *p, ie_method m, const char *target) {
    ie_edit_params_init(p, m);
    p->source_prompt = SRC;
    p->target_prompt = target;
    p->device = "cpu";
    p->seed = 7 + 100 * (int)m; /* BDIA and InfEdit encode the same VAE sample for one seed: keep them apart */
    /* fewer steps than the defaults: the cache does not care, the test time does */
    p->steps = m == IE_METHOD_EF_DDPM ? 24 : m == IE_METHOD_BDIA ? 20 : 8;
    if (m == IE_METHOD_EF_DDPM) p->cfg_target = 5;
    if (m == IE_METHOD_INFEDIT) p->blend_words = "yellow";
}

static ie_image edit(ie_session *s, const ie_edit_params *p, const ie_image *in) {
    ie_image out = {0};
    char err[1024];
    ie_status st = ie_edit(s, p, in, &out, NULL, NULL, err, sizeof err);
    if (st) {
        fprintf(stderr, "edit failed: %s\n", err);
        exit(1);
    }
    return out;
}

static bool same_bits(const ie_image *a, const ie_image *b) {
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           !memcmp(a->pixels, b->pixels, sizeof(float) * (size_t)a->width * a->height * a->channels);
}

/* Every entry file in dir, and a copy of the list's count. */
static int list_entries(const char *dir, char ***out) {
    GPtrArray *a = g_ptr_array_new();
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d)))
        if (g_str_has_suffix(n, IE_CACHE_SUFFIX)) g_ptr_array_add(a, g_build_filename(dir, n, NULL));
    if (d) g_dir_close(d);
    int count = (int)a->len;
    g_ptr_array_add(a, NULL);
    *out = (char **)g_ptr_array_free(a, FALSE);
    return count;
}

static void test_bit_identical(const char *dir, const ie_image *in) {
    for (int m = 0; m < IE_METHOD_COUNT; m++) {
        const char *name = ie_method_name((ie_method)m);
        ie_session *s = open_session(dir);
        ie_edit_params p;
        params_for(&p, (ie_method)m, TGT_A);
        p.no_cache = true;
        ie_image ref = edit(s, &p, in);
        CHECK(!ie_session_last_cached(s), "%s: no-cache edit came from the cache", name);
        p.no_cache = false;
        ie_image fill = edit(s, &p, in);
        CHECK(!ie_session_last_cached(s), "%s: first cached edit was a hit on an empty cache", name);
        CHECK(same_bits(&fill, &ref), "%s: the edit that fills the cache differs from the uncached one", name);
        ie_image mem = edit(s, &p, in);
        CHECK(ie_session_last_cached(s), "%s: second edit missed the memory level", name);
        CHECK(same_bits(&mem, &ref), "%s: edit from the memory level differs", name);
        ie_session_close(s);

        s = open_session(dir); /* a new process would see only the disk */
        ie_image disk = edit(s, &p, in);
        CHECK(ie_session_last_cached(s), "%s: a new session missed the disk level", name);
        CHECK(same_bits(&disk, &ref), "%s: edit from the disk level differs", name);

        /* another target: the reason for the cache */
        params_for(&p, (ie_method)m, TGT_B);
        ie_image b_cached = edit(s, &p, in);
        CHECK(ie_session_last_cached(s), "%s: a new target missed", name);
        p.no_cache = true;
        ie_image b_ref = edit(s, &p, in);
        CHECK(same_bits(&b_cached, &b_ref), "%s: second target differs with and without the cache", name);
        CHECK(!same_bits(&b_ref, &ref), "%s: the two targets gave the same image", name);
        p.no_cache = false;

        /* what the inversion depends on misses */
        params_for(&p, (ie_method)m, TGT_A);
        p.seed += 1;
        ie_image o1 = edit(s, &p, in);
        CHECK(!ie_session_last_cached(s), "%s: another seed hit", name);
        params_for(&p, (ie_method)m, TGT_A);
        p.source_prompt = "a red circle on the left on a green background";
        ie_image o2 = edit(s, &p, in);
        CHECK(!ie_session_last_cached(s) || m == IE_METHOD_INFEDIT, "%s: another source prompt hit", name);
        params_for(&p, (ie_method)m, TGT_A);
        p.steps += 2;
        ie_image o3 = edit(s, &p, in);
        CHECK(!ie_session_last_cached(s) || m == IE_METHOD_INFEDIT, "%s: other steps hit", name);
        printf("%s: uncached, filling, memory, disk, second target: bit-identical\n", name);
        ie_image_free(&o1), ie_image_free(&o2), ie_image_free(&o3);
        ie_image_free(&ref), ie_image_free(&fill), ie_image_free(&mem), ie_image_free(&disk);
        ie_image_free(&b_cached), ie_image_free(&b_ref);
        ie_session_close(s);
    }

    /* EF-DDPM's shift moves the maps after the inversion: the cached maps stay unshifted */
    ie_session *s = open_session(dir);
    ie_edit_params p;
    params_for(&p, IE_METHOD_EF_DDPM, TGT_A);
    p.shift_x = 0.25;
    ie_image sh = edit(s, &p, in);
    CHECK(ie_session_last_cached(s), "ef-ddpm shift: missed");
    p.no_cache = true;
    ie_image sh_ref = edit(s, &p, in);
    CHECK(same_bits(&sh, &sh_ref), "ef-ddpm shift: differs with the cache");
    params_for(&p, IE_METHOD_EF_DDPM, TGT_A);
    ie_image after = edit(s, &p, in);
    p.no_cache = true;
    ie_image after_ref = edit(s, &p, in);
    CHECK(same_bits(&after, &after_ref), "ef-ddpm: an edit after a shifted one differs (shifted maps cached?)");
    ie_image_free(&sh), ie_image_free(&sh_ref), ie_image_free(&after), ie_image_free(&after_ref);
    ie_session_close(s);
}

/* Damages every entry in dir with f, then checks an edit ignores them and writes good ones. */
static void test_damaged(const char *dir, const ie_image *in, const char *what, void (*damage)(const char *path)) {
    char **files;
    int n = list_entries(dir, &files);
    CHECK(n >= 2, "%s: expected cache entries in %s, found %d", what, dir, n);
    for (int i = 0; i < n; i++) damage(files[i]);
    ie_session *s = open_session(dir);
    ie_edit_params p;
    params_for(&p, IE_METHOD_EF_DDPM, TGT_A);
    ie_image got = edit(s, &p, in);
    CHECK(!ie_session_last_cached(s), "%s: a damaged entry was used", what);
    p.no_cache = true;
    ie_image ref = edit(s, &p, in);
    CHECK(same_bits(&got, &ref), "%s: the edit differs", what);
    ie_session_close(s);
    /* replaced: a new session hits again */
    s = open_session(dir);
    p.no_cache = false;
    ie_image again = edit(s, &p, in);
    CHECK(ie_session_last_cached(s), "%s: the damaged entry was not replaced", what);
    CHECK(same_bits(&again, &ref), "%s: the replaced entry gives another edit", what);
    ie_session_close(s);
    printf("%s entries: ignored, edit bit-identical, replaced\n", what);
    ie_image_free(&got), ie_image_free(&ref), ie_image_free(&again);
    g_strfreev(files);
}

static void flip_payload_byte(const char *path) {
    gchar *b;
    gsize n;
    if (!g_file_get_contents(path, &b, &n, NULL)) return;
    if (n > IE_CACHE_HEADER + 5) b[IE_CACHE_HEADER + (n - IE_CACHE_HEADER) / 2] ^= 0x10;
    g_file_set_contents(path, b, (gssize)n, NULL);
    g_free(b);
}

static void truncate_entry(const char *path) {
    gchar *b;
    gsize n;
    if (!g_file_get_contents(path, &b, &n, NULL)) return;
    g_file_set_contents(path, b, (gssize)(n * 2 / 3), NULL);
    g_free(b);
}

static void foreign_version(const char *path) {
    gchar *b;
    gsize n;
    if (!g_file_get_contents(path, &b, &n, NULL)) return;
    uint32_t v = IE_CACHE_VERSION + 1;
    if (n > 12) memcpy(b + 8, &v, 4);
    g_file_set_contents(path, b, (gssize)n, NULL);
    g_free(b);
}

static void test_eviction(const char *base) {
    char *dir = g_build_filename(base, "evict", NULL);
    size_t len = 10000;
    /* room for two entries of len bytes (with their headers), not three */
    ie_cache *c = ie_cache_new(0, dir, 2 * (int64_t)(len + IE_CACHE_HEADER) + 100);
    char *data = g_malloc(len);
    ie_cache_key k[3];
    for (int i = 0; i < 3; i++) {
        GChecksum *ck = ie_cache_key_begin("eviction test");
        ie_cache_key_int(ck, "i", i);
        ie_cache_key_end(ck, &k[i]);
    }
    memset(data, 'a', len);
    ie_cache_put(c, &k[0], IE_CACHE_LATENT, data, len);
    g_usleep(30000); /* file times have the kernel tick's resolution */
    memset(data, 'b', len);
    ie_cache_put(c, &k[1], IE_CACHE_LATENT, data, len);
    g_usleep(30000);
    void *got;
    size_t glen;
    bool hit = ie_cache_get(c, &k[0], IE_CACHE_LATENT, &got, &glen); /* A is now the most recently used */
    CHECK(hit && glen == len && ((char *)got)[0] == 'a', "eviction: A not found before the third entry");
    g_free(got);
    g_usleep(30000);
    memset(data, 'c', len);
    ie_cache_put(c, &k[2], IE_CACHE_LATENT, data, len);
    CHECK(ie_cache_disk_usage(c) <= 2 * (int64_t)(len + IE_CACHE_HEADER) + 100, "eviction: over the cap: %lld",
          (long long)ie_cache_disk_usage(c));
    bool a = ie_cache_get(c, &k[0], IE_CACHE_LATENT, &got, &glen);
    g_free(got);
    bool b = ie_cache_get(c, &k[1], IE_CACHE_LATENT, &got, &glen);
    g_free(got);
    bool cc = ie_cache_get(c, &k[2], IE_CACHE_LATENT, &got, &glen);
    CHECK(a && !b && cc, "eviction: expected A and C kept, B (least recently used) evicted; got A %d B %d C %d", a, b,
          cc);
    CHECK(cc && glen == len && ((char *)got)[len - 1] == 'c', "eviction: C's bytes");
    g_free(got);
    /* an entry larger than the whole cap is not stored, and evicts nothing */
    char *big = g_malloc0(3 * len);
    ie_cache_key kb;
    GChecksum *ck = ie_cache_key_begin("eviction test");
    ie_cache_key_str(ck, "big", "yes");
    ie_cache_key_end(ck, &kb);
    ie_cache_put(c, &kb, IE_CACHE_LATENT, big, 3 * len);
    CHECK(!ie_cache_get(c, &kb, IE_CACHE_LATENT, &got, &glen), "eviction: an entry over the cap was stored");
    CHECK(ie_cache_get(c, &k[0], IE_CACHE_LATENT, &got, &glen), "eviction: an oversize put evicted A");
    g_free(got);
    /* the kind is part of what is checked */
    CHECK(!ie_cache_get(c, &k[0], IE_CACHE_BDIA, &got, &glen), "a latent entry was returned as a BDIA pair");
    g_free(big);
    printf("eviction: under the cap, least recently used first\n");
    ie_cache_free(c);
    g_free(data);
    g_free(dir);
}

static void test_ef_pack(void) {
    /* the serialisation rejects bytes that do not describe maps */
    ef_ddpm_maps *m = ie_cache_unpack_ef_ddpm("short", 5);
    CHECK(m == NULL, "unpack accepted 5 bytes");
    int32_t hdr[6] = {3, 4, 2, 2, 1, 0};
    char buf[sizeof hdr + 8];
    memcpy(buf, hdr, sizeof hdr);
    memset(buf + sizeof hdr, 0, 8);
    CHECK(ie_cache_unpack_ef_ddpm(buf, sizeof buf) == NULL, "unpack accepted a header without data");
}

int main(void) {
    char *base = g_dir_make_tmp("invedit-test-cache-XXXXXX", NULL);
    if (!base) return 1;
    char *dir = g_build_filename(base, "cache", NULL);
    ie_image in = {0};
    make_input(&in);
    test_ef_pack();
    test_eviction(base);
    test_bit_identical(dir, &in);
    test_damaged(dir, &in, "corrupt (one payload byte flipped)", flip_payload_byte);
    test_damaged(dir, &in, "truncated", truncate_entry);
    test_damaged(dir, &in, "foreign (another format version)", foreign_version);
    ie_image_free(&in);
    char *cmd = g_strdup_printf("rm -rf '%s'", base);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", base);
    g_free(cmd);
    g_free(dir);
    g_free(base);
    if (fails) {
        fprintf(stderr, "%d check(s) failed\n", fails);
        return 1;
    }
    printf("all cache checks passed\n");
    return 0;
}
