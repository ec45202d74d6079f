/* The CLIP ViT-L/14 BPE vocabulary compiled into the library (model/data/,
 * embedded by tools/embed_bytes.py at build time). See tokenizer.h. */
#include <gio/gio.h>
#include <json-glib/json-glib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/config.h"
#include "model/tokenizer.h"

extern const unsigned char ie_clip_bpe_gz[];
extern const size_t ie_clip_bpe_gz_len;

#include "model/errmsg.h"

/* The decompressed BPE file, or NULL (g_free). */
static char *inflate_bpe(size_t *len, char *err, size_t errlen) {
    GInputStream *mem = g_memory_input_stream_new_from_data(ie_clip_bpe_gz, (gssize)ie_clip_bpe_gz_len, NULL);
    GZlibDecompressor *dec = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    GInputStream *in = g_converter_input_stream_new(mem, G_CONVERTER(dec));
    GByteArray *buf = g_byte_array_sized_new(1 << 21);
    guint8 chunk[1 << 16];
    GError *ge = NULL;
    gssize n;
    while ((n = g_input_stream_read(in, chunk, sizeof chunk, NULL, &ge)) > 0) g_byte_array_append(buf, chunk, (guint)n);
    g_object_unref(in);
    g_object_unref(dec);
    g_object_unref(mem);
    if (n < 0) {
        ie_set_err(err, errlen, "built-in CLIP vocabulary: cannot decompress: %s", ge ? ge->message : "?");
        g_clear_error(&ge);
        g_byte_array_free(buf, TRUE);
        return NULL;
    }
    guint8 zero = 0;
    g_byte_array_append(buf, &zero, 1);
    *len = buf->len - 1;
    return (char *)g_byte_array_free(buf, FALSE);
}

/* GPT-2 bytes_to_unicode() in its order: the printable Latin-1 bytes, then
 * the other 68 bytes mapped to U+0100.. in byte order. */
static int byte_symbols(uint32_t cp[256]) {
    int k = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) cp[k++] = (uint32_t)b;
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)))
            cp[k++] = 256u + (uint32_t)extra++;
    return k;
}

ie_status clip_builtin_vocab_text(char **vocab_json, size_t *vocab_len, char **merges, size_t *merges_len, char *err,
                                  size_t errlen) {
    *vocab_json = *merges = NULL;
    size_t mlen = 0;
    char *text = inflate_bpe(&mlen, err, errlen);
    if (!text) return IE_ERR_FORMAT;
    JsonBuilder *jb = json_builder_new();
    json_builder_begin_object(jb);
    int id = 0;
    uint32_t cp[256];
    byte_symbols(cp);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 256; i++) {
            char s[16];
            int n = g_unichar_to_utf8(cp[i], s);
            s[n] = 0;
            if (pass) g_strlcat(s, "</w>", sizeof s);
            json_builder_set_member_name(jb, s);
            json_builder_add_int_value(jb, id++);
        }
    /* merges: the lines after the header, at most CLIP_MAX_MERGES */
    const char *p = strchr(text, '\n');
    p = p ? p + 1 : text + mlen;
    GString *tok = g_string_new(NULL);
    for (int m = 0; m < CLIP_MAX_MERGES && *p; m++) {
        const char *e = strchr(p, '\n');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        g_string_truncate(tok, 0);
        for (size_t i = 0; i < l; i++)
            if (p[i] != ' ' && p[i] != '\r') g_string_append_c(tok, p[i]);
        json_builder_set_member_name(jb, tok->str);
        json_builder_add_int_value(jb, id++);
        p = e ? e + 1 : p + l;
    }
    g_string_free(tok, TRUE);
    json_builder_set_member_name(jb, "<|startoftext|>");
    json_builder_add_int_value(jb, id++);
    json_builder_set_member_name(jb, "<|endoftext|>");
    json_builder_add_int_value(jb, id++);
    json_builder_end_object(jb);
    JsonGenerator *gen = json_generator_new();
    JsonNode *root = json_builder_get_root(jb);
    json_generator_set_root(gen, root);
    gsize vlen = 0;
    *vocab_json = json_generator_to_data(gen, &vlen);
    *vocab_len = vlen;
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(jb);
    if (id != CLIP_BUILTIN_VOCAB_SIZE) {
        ie_set_err(err, errlen, "built-in CLIP vocabulary: %d ids instead of %d", id, CLIP_BUILTIN_VOCAB_SIZE);
        g_free(*vocab_json);
        g_free(text);
        *vocab_json = NULL;
        return IE_ERR_FORMAT;
    }
    *merges = text;
    *merges_len = mlen;
    return IE_OK;
}

ie_status clip_tokenizer_load_builtin(clip_tokenizer **out, char *err, size_t errlen) {
    *out = NULL;
    char *vocab = NULL, *merges = NULL;
    size_t vl = 0, ml = 0;
    ie_status st = clip_builtin_vocab_text(&vocab, &vl, &merges, &ml, err, errlen);
    if (!st) st = clip_tokenizer_load_memory(vocab, vl, merges, ml, "<built-in CLIP vocabulary>", out, err, errlen);
    g_free(vocab);
    g_free(merges);
    return st;
}

ie_status sd_tokenizer_open(const sd_weights *w, const sd_model_config *cfg, struct clip_tokenizer **out, char *source,
                            size_t source_len, char *err, size_t errlen) {
    *out = NULL;
    const char *dir = sd_weights_tokenizer_dir(w);
    if (dir) {
        if (source && source_len) snprintf(source, source_len, "folder %s", dir);
        return clip_tokenizer_load_dir(dir, out, err, errlen);
    }
    if (!cfg || !cfg->has[SD_TEXT_ENCODER]) {
        ie_set_err(err, errlen, "%s: no tokenizer folder (tokenizer/vocab.json, merges.txt) and no text encoder",
                   sd_weights_path(w));
        return IE_ERR_FORMAT;
    }
    if (cfg->text.vocab_size != CLIP_BUILTIN_VOCAB_SIZE) {
        ie_set_err(
            err, errlen,
            "%s: no tokenizer/ folder next to the weights, and the text encoder has %d token embeddings, not the "
            "%d of the CLIP vocabulary built into invedit: put the model's tokenizer/ folder (vocab.json, "
            "merges.txt) next to it",
            sd_weights_path(w), cfg->text.vocab_size, CLIP_BUILTIN_VOCAB_SIZE);
        return IE_ERR_FORMAT;
    }
    if (source && source_len)
        snprintf(source, source_len, "built-in CLIP ViT-L/14 vocabulary (%d tokens)", CLIP_BUILTIN_VOCAB_SIZE);
    return clip_tokenizer_load_builtin(out, err, errlen);
}
