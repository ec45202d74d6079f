/* safetensors reader: valid files, dtype conversion, and every kind of bad
 * file (each must fail with a message naming the file and what is wrong).
 * Files are generated into a temporary folder. */
#include "model/safetensors.h"

#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "st_writer.h"
#include "testutil.h"

static char *tmpdir;

static char *tmp_path(const char *name) { return g_build_filename(tmpdir, name, NULL); }

static bool contains_all(const char *s, const char *const *subs) {
    for (int i = 0; subs[i]; i++)
        if (!strstr(s, subs[i])) return false;
    return true;
}

/* Opens `path` (file and memory), expects failure `want` with all of `subs`
 * in the message. */
static void expect_bad(const char *what, const char *path, ie_status want, const char *const *subs) {
    char err[1024] = "";
    st_file *f = NULL;
    ie_status st = st_open(path, &f, err, sizeof err);
    TU_CHECK(st == want && f == NULL && contains_all(err, subs), "%-34s -> %s", what, err);
    if (f) st_close(f);
    /* the in-memory entry point gives the same verdict */
    gchar *data = NULL;
    gsize len = 0;
    if (g_file_get_contents(path, &data, &len, NULL)) {
        char err2[1024] = "";
        st = st_open_memory(data, len, path, &f, err2, sizeof err2);
        TU_CHECK(st == want && f == NULL && strcmp(err, err2) == 0, "%-34s (memory) same error", what);
        if (f) st_close(f);
        g_free(data);
    }
}

static void write_header_file(const char *name, const char *hdr, size_t data_bytes) {
    char *p = tmp_path(name);
    stw_write_raw(p, strlen(hdr), hdr, strlen(hdr), data_bytes);
    g_free(p);
}

static void test_valid(void) {
    char *path = tmp_path("good.safetensors");
    float f32[6] = {1, -2, 3.5f, 0, 1e-8f, -65504};
    uint16_t f16[4] = {0x3c00, 0xc000, 0x0001, 0x7bff}; /* 1, -2, 2^-24, 65504 */
    uint16_t bf16[3] = {0x3f80, 0xc040, 0x4049};        /* 1, -3, 3.140625 */
    int64_t pos[3] = {0, 1, 2};
    double f64[2] = {0.25, -1e300};
    stw *w = stw_new();
    stw_add(w, "b.weight", "F32", 2, (int64_t[]){2, 3}, f32);
    stw_add(w, "a.half", "F16", 1, (int64_t[]){4}, f16);
    stw_add(w, "c.bf16", "BF16", 3, (int64_t[]){1, 3, 1}, bf16);
    stw_add(w, "text_model.embeddings.position_ids", "I64", 2, (int64_t[]){1, 3}, pos);
    stw_add(w, "d.f64", "F64", 1, (int64_t[]){2}, f64);
    stw_add(w, "scalar", "F32", 0, NULL, (float[]){42});
    stw_add(w, "empty", "F16", 2, (int64_t[]){0, 5}, NULL);
    g_string_append(w->meta, ",\"__metadata__\":{\"format\":\"pt\",\"n\":\"7\"}");
    stw_write(w, path, false);
    stw_free(w);

    char err[512] = "";
    st_file *f = NULL;
    ie_status st = st_open(path, &f, err, sizeof err);
    TU_CHECK(st == IE_OK && f, "open a valid file (%s)", err);
    if (!f) return;
    TU_CHECK(st_count(f) == 7, "7 tensors listed, including I64 (got %d)", st_count(f));
    TU_CHECK(strcmp(st_at(f, 0)->name, "a.half") == 0 &&
                 strcmp(st_at(f, 6)->name, "text_model.embeddings.position_ids") == 0,
             "tensors sorted by name");
    TU_CHECK(st_metadata(f, "format") && strcmp(st_metadata(f, "format"), "pt") == 0 &&
                 st_metadata(f, "missing") == NULL,
             "metadata");
    const st_tensor *t = st_get(f, "b.weight");
    TU_CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && t->numel == 6 &&
                 t->nbytes == 24 && memcmp(t->data, f32, 24) == 0,
             "F32 tensor: shape, size, zero-copy data");
    TU_CHECK(st_get(f, "nope") == NULL, "unknown name -> NULL");
    float out[8];
    TU_CHECK(t && st_read_f32(t, out, err, sizeof err) == IE_OK && memcmp(out, f32, 24) == 0, "st_read_f32(F32)");
    t = st_get(f, "a.half");
    TU_CHECK(t && st_read_f32(t, out, err, sizeof err) == IE_OK && out[0] == 1 && out[1] == -2 &&
                 out[2] == ldexpf(1, -24) && out[3] == 65504,
             "st_read_f32(F16): exact, incl. subnormal");
    uint16_t h[8];
    TU_CHECK(t && st_read_f16(t, h, err, sizeof err) == IE_OK && memcmp(h, f16, 8) == 0, "st_read_f16(F16) copies");
    t = st_get(f, "c.bf16");
    TU_CHECK(t && st_read_f32(t, out, err, sizeof err) == IE_OK && out[0] == 1 && out[1] == -3 && out[2] == 3.140625f,
             "st_read_f32(BF16) converts");
    TU_CHECK(t && st_read_f16(t, h, err, sizeof err) == IE_OK && h[0] == 0x3c00 && h[1] == 0xc200,
             "st_read_f16(BF16) converts");
    t = st_get(f, "b.weight");
    TU_CHECK(t && st_read_f16(t, h, err, sizeof err) == IE_OK && h[0] == 0x3c00 && h[1] == 0xc000 && h[2] == 0x4300 &&
                 h[5] == 0xfbff,
             "st_read_f16(F32) rounds");
    t = st_get(f, "d.f64");
    TU_CHECK(t && st_read_f32(t, out, err, sizeof err) == IE_OK && out[0] == 0.25f && isinf(out[1]),
             "st_read_f32(F64)");
    t = st_get(f, "scalar");
    TU_CHECK(t && t->ndim == 0 && t->numel == 1 && st_read_f32(t, out, NULL, 0) == IE_OK && out[0] == 42,
             "scalar (shape [])");
    t = st_get(f, "empty");
    TU_CHECK(t && t->numel == 0 && t->nbytes == 0, "zero-size tensor [0, 5]");
    t = st_get(f, "text_model.embeddings.position_ids");
    err[0] = 0;
    st = t ? st_read_f32(t, out, err, sizeof err) : IE_OK;
    TU_CHECK(t && t->dtype == ST_I64 && st == IE_ERR_UNSUPPORTED && strstr(err, "I64") && strstr(err, "position_ids") &&
                 strstr(err, "good.safetensors"),
             "I64 listed but rejected on read: %s", err);
    char sb[64];
    TU_CHECK(strcmp(st_shape_str((int64_t[]){640, 320, 3, 3}, 4, sb, sizeof sb), "[640, 320, 3, 3]") == 0 &&
                 strcmp(st_shape_str(NULL, 0, sb, sizeof sb), "[]") == 0,
             "st_shape_str");
    st_close(f);
    g_free(path);
}

static void test_half(void) {
    /* every half -> float -> half is the identity (NaNs stay NaN) */
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        float x = st_half_to_float((uint16_t)i);
        uint16_t back = st_float_to_half(x);
        bool nan = ((i >> 10) & 0x1f) == 0x1f && (i & 0x3ff);
        if (nan ? !(isnan(x) && ((back >> 10) & 0x1f) == 0x1f && (back & 0x3ff)) : back != i) bad++;
    }
    TU_CHECK(bad == 0, "half -> float -> half round trip over all 65536 values (%d bad)", bad);
    /* rounding: nearest, ties to even */
    struct {
        float f;
        uint16_t h;
    } cases[] = {
        {1.0f, 0x3c00},
        {1.0f + ldexpf(1, -11), 0x3c00},     /* tie -> even */
        {1.0f + 3 * ldexpf(1, -11), 0x3c02}, /* tie -> even (up) */
        {1.0f + ldexpf(1, -11) + ldexpf(1, -20), 0x3c01},
        {65504.f, 0x7bff},
        {65520.f, 0x7c00},
        /* rounds to inf */ {65519.f, 0x7bff},
        {1e-8f, 0x0000},
        {ldexpf(1, -25), 0x0000},
        /* tie -> even (0) */ {ldexpf(1.5f, -25), 0x0001},
        {ldexpf(3, -25), 0x0002},
        /* 1.5 ulp tie -> even 2 */ {ldexpf(1, -14), 0x0400},
        {ldexpf(1023, -24), 0x03ff},
        {-0.0f, 0x8000},
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
    };
    int wrong = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (st_float_to_half(cases[i].f) != cases[i].h) {
            wrong++;
            printf("     %g -> 0x%04x, want 0x%04x\n", (double)cases[i].f, st_float_to_half(cases[i].f), cases[i].h);
        }
    TU_CHECK(wrong == 0, "float -> half rounding cases");
    TU_CHECK(isnan(st_half_to_float(st_float_to_half(NAN))), "NaN stays NaN");
}

static void test_bad_files(void) {
    char *p;
    /* truncated: less than the 8-byte length */
    p = tmp_path("short.safetensors");
    g_file_set_contents(p, "abcd", 4, NULL);
    expect_bad("truncated (4 bytes)", p, IE_ERR_FORMAT,
               (const char *[]){"short.safetensors", "truncated", "4 bytes", NULL});
    g_free(p);
    /* empty file */
    p = tmp_path("empty.safetensors");
    g_file_set_contents(p, "", 0, NULL);
    expect_bad("empty file", p, IE_ERR_FORMAT, (const char *[]){"truncated", "0 bytes", NULL});
    g_free(p);
    /* header length beyond the file */
    p = tmp_path("hlen.safetensors");
    stw_write_raw(p, 1000, "{}", 2, 0);
    expect_bad("header length beyond the file", p, IE_ERR_FORMAT,
               (const char *[]){"hlen.safetensors", "header length 1000 exceeds the file", "only 2 bytes", NULL});
    g_free(p);
    p = tmp_path("hlen2.safetensors");
    stw_write_raw(p, UINT64_MAX, "{}", 2, 0);
    expect_bad("header length 2^64-1", p, IE_ERR_FORMAT, (const char *[]){"exceeds the file", NULL});
    g_free(p);
    /* header not JSON */
    write_header_file("notjson.safetensors", "{\"a\": {\"dtype\": F32}}", 0);
    p = tmp_path("notjson.safetensors");
    expect_bad("header not JSON", p, IE_ERR_FORMAT, (const char *[]){"notjson.safetensors", "not valid JSON", NULL});
    g_free(p);
    write_header_file("garbage.safetensors", "\x01\x02garbage", 0);
    p = tmp_path("garbage.safetensors");
    expect_bad("header binary garbage", p, IE_ERR_FORMAT, (const char *[]){"header", NULL});
    g_free(p);
    write_header_file("utf8.safetensors", "{\"\xff\":1}", 0);
    p = tmp_path("utf8.safetensors");
    expect_bad("header not UTF-8", p, IE_ERR_FORMAT, (const char *[]){"UTF-8", "0xff", NULL});
    g_free(p);
    write_header_file("array.safetensors", "[1, 2, 3]", 0);
    p = tmp_path("array.safetensors");
    expect_bad("header is an array", p, IE_ERR_FORMAT,
               (const char *[]){"expected a JSON object", "found an array", NULL});
    g_free(p);

    struct {
        const char *name, *hdr;
        size_t data;
        const char *subs[5];
    } cases[] = {
        {"tensor not an object", "{\"w\": 5}", 0, {"tensor 'w'", "expected an object", "found an integer"}},
        {"missing dtype",
         "{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}",
         4,
         {"tensor 'w'", "field \"dtype\"", "the field is missing"}},
        {"dtype not a string",
         "{\"w\": {\"dtype\": 1, \"shape\": [1], \"data_offsets\": [0, 4]}}",
         4,
         {"field \"dtype\"", "expected a string", "found an integer"}},
        {"unknown dtype",
         "{\"w\": {\"dtype\": \"F17\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         4,
         {"tensor 'w'", "unknown dtype \"F17\"", "expected one of"}},
        {"missing shape",
         "{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}",
         4,
         {"field \"shape\"", "expected an array", "the field is missing"}},
        {"negative shape entry",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, -3], \"data_offsets\": [0, 4]}}",
         4,
         {"tensor 'w'", "shape[1]", "non-negative integer", "found a negative integer"}},
        {"non-integer shape entry",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 4]}}",
         4,
         {"shape[0]", "found a non-integer number"}},
        {"string shape entry",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 4]}}",
         4,
         {"shape[0]", "found a string"}},
        {"too many dimensions",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}",
         4,
         {"9 dimensions", "at most 8"}},
        {"element count overflow",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 16], \"data_offsets\": [0, 4]}}",
         4,
         {"tensor 'w'", "too large"}},
        {"offsets missing",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}",
         4,
         {"data_offsets", "expected an array [begin, end]", "the field is missing"}},
        {"offsets of 3 numbers",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}",
         8,
         {"data_offsets", "another length"}},
        {"negative offset",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}",
         4,
         {"data_offsets[0]", "found a negative integer"}},
        {"end before begin",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}",
         8,
         {"tensor 'w'", "[8, 4]", "end is before begin"}},
        {"offsets out of range",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}",
         12,
         {"tensor 'w'", "[0, 16] out of range", "holds 12 bytes"}},
        {"shape/size mismatch",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 20]}}",
         20,
         {"tensor 'w'", "shape [2, 3] of F32 needs 24 bytes", "[0, 20] hold 20"}},
        {"F16 size mismatch",
         "{\"w\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [0, 12]}}",
         12,
         {"needs 6 bytes", "hold 12"}},
        {"overlapping tensors",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
         " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [12, 20]}}",
         20,
         {"tensors 'a' [0, 16) and 'b' [12, 20) overlap"}},
        {"identical ranges",
         "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
         " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}, "
         " \"c\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         8,
         {"'a' [4, 8) and 'b' [4, 8) overlap"}},
        {"duplicate names",
         "{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
         " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
         8,
         {"\"w\" more than once"}},
        {"duplicate field",
         "{\"w\": {\"dtype\": \"F32\", \"dtype\": \"F16\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         4,
         {"\"dtype\" more than once"}},
        {"metadata not an object",
         "{\"__metadata__\": [1], \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         4,
         {"__metadata__", "expected an object", "found an array"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "bad%zu.safetensors", i);
        write_header_file(name, cases[i].hdr, cases[i].data);
        p = tmp_path(name);
        const char *subs[7] = {name};
        for (int k = 0; k < 5 && cases[i].subs[k]; k++) subs[k + 1] = cases[i].subs[k];
        expect_bad(cases[i].name, p, IE_ERR_FORMAT, subs);
        g_free(p);
    }

    /* a real file cut short in its data */
    p = tmp_path("cut.safetensors");
    stw *w = stw_new();
    stw_add(w, "x", "F32", 1, (int64_t[]){100}, NULL);
    stw_write(w, p, false);
    stw_free(w);
    gchar *data;
    gsize len;
    g_file_get_contents(p, &data, &len, NULL);
    g_file_set_contents(p, data, (gssize)len - 10, NULL);
    g_free(data);
    expect_bad("file truncated in the data", p, IE_ERR_FORMAT,
               (const char *[]){"cut.safetensors", "tensor 'x'", "out of range", "file truncated?", NULL});
    g_free(p);

    /* gaps between tensors and trailing bytes are allowed */
    write_header_file("gap.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}",
                      32);
    p = tmp_path("gap.safetensors");
    char err[512] = "";
    st_file *f = NULL;
    TU_CHECK(st_open(p, &f, err, sizeof err) == IE_OK, "gaps and trailing bytes accepted (%s)", err);
    st_close(f);
    g_free(p);

    /* nonexistent path, a folder */
    p = tmp_path("nonexistent.safetensors");
    expect_bad("nonexistent file", p, IE_ERR_IO, (const char *[]){"nonexistent.safetensors", "cannot open", NULL});
    g_free(p);
    f = NULL;
    TU_CHECK(st_open(tmpdir, &f, err, sizeof err) == IE_ERR_IO && !f, "a folder -> IE_ERR_IO: %s", err);
}

int main(void) {
    tmpdir = g_dir_make_tmp("invedit-st-XXXXXX", NULL);
    if (!tmpdir) {
        printf("cannot create a temporary folder\n");
        return 1;
    }
    test_valid();
    test_half();
    test_bad_files();
    /* clean up */
    GDir *d = g_dir_open(tmpdir, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        char *p = tmp_path(n);
        g_remove(p);
        g_free(p);
    }
    if (d) g_dir_close(d);
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return tu_finish("test_safetensors");
}
