/* The inversion cache: what an edit computes from the image and the source
 * side alone (the encoded latent, EF-DDPM's noise maps and x_t, BDIA's latent
 * pair) is kept so that the next edit of the same image with another target
 * skips it.
 *
 * Two levels, both keyed by a SHA-256 over everything the product depends on
 * (the pipeline builds the keys: model identity, device and weight precision,
 * the input's content, the working size, prompts, the inversion's parameters,
 * the seed):
 *   - memory: within one session (several targets, a batch), capped in bytes,
 *     least recently used dropped first;
 *   - disk: one file per entry in a folder (by default $XDG_CACHE_HOME/invedit,
 *     i.e. ~/.cache/invedit), written atomically (util/atomic_file.h), capped in
 *     bytes with least-recently-used eviction (a hit refreshes the file's
 *     modification time). The format is versioned:
 *
 *       offset  size  field
 *       0       8     magic "IEINVC\r\n"
 *       8       4     format version (IE_CACHE_VERSION), host byte order
 *       12      4     byte-order mark 0x01020304 (an entry from a machine of
 *                     the other byte order is foreign)
 *       16      4     kind (IE_CACHE_LATENT, IE_CACHE_EF_DDPM, IE_CACHE_BDIA)
 *       20      4     reserved (0)
 *       24      32    the key
 *       56      8     payload length in bytes
 *       64      32    SHA-256 of the payload
 *       96      ...   payload
 *
 *     An entry whose header, length, key or checksum does not match is never
 *     used: it is removed and rewritten by the next store.
 *
 * The cache never changes results: a hit gives back the same bits the
 * computation would (tests/test_cache.c checks whole edits bit for bit). */
#ifndef INVEDIT_CACHE_H
#define INVEDIT_CACHE_H

#include <glib.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inversion/ef_ddpm.h"

#define IE_CACHE_VERSION 1u
#define IE_CACHE_HEADER 96
#define IE_CACHE_SUFFIX ".iec"

typedef enum ie_cache_kind {
    IE_CACHE_LATENT = 1,  /* a float latent [C, h, w] (the VAE encoding of the input) */
    IE_CACHE_EF_DDPM = 2, /* EF-DDPM's maps: tau, x_t for every level, noise maps */
    IE_CACHE_BDIA = 3,    /* BDIA's pair (z_{K-1}, z_{K-2}) in double */
} ie_cache_kind;

typedef struct ie_cache_key {
    uint8_t b[32];
} ie_cache_key;

typedef struct ie_cache ie_cache;

/* A cache with a memory level of mem_bytes (0: none) and, when dir is not
 * NULL, a disk level in dir capped at disk_bytes. NULL when out of memory. */
ie_cache *ie_cache_new(int64_t mem_bytes, const char *dir, int64_t disk_bytes);
void ie_cache_free(ie_cache *c);
/* The disk folder (NULL when there is none). */
const char *ie_cache_dir(const ie_cache *c);

/* The default disk folder: $INVEDIT_CACHE_DIR, else g_get_user_cache_dir()/invedit
 * (a newly allocated string). The default cap: $INVEDIT_CACHE_MB MiB, else 2048. */
char *ie_cache_default_dir(void);
int64_t ie_cache_default_disk_bytes(void);

/* Looks key up, memory first, then disk (a disk hit is copied into memory).
 * On a hit returns true and *data (g_malloc'd, free with g_free) / *len. */
bool ie_cache_get(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, void **data, size_t *len);
/* Stores a copy in memory and on disk (best effort: a failure to write the
 * disk entry only costs the next run the computation). */
void ie_cache_put(ie_cache *c, const ie_cache_key *key, ie_cache_kind kind, const void *data, size_t len);

/* Key building: a SHA-256 over named fields (the names keep fields apart). */
GChecksum *ie_cache_key_begin(const char *what);
void ie_cache_key_str(GChecksum *ck, const char *name, const char *value);
void ie_cache_key_num(GChecksum *ck, const char *name, double value);
void ie_cache_key_int(GChecksum *ck, const char *name, int64_t value);
void ie_cache_key_bytes(GChecksum *ck, const char *name, const void *data, size_t len);
void ie_cache_key_end(GChecksum *ck, ie_cache_key *key); /* frees ck */

/* A model's identity for keys: for a file, its size, modification time and
 * safetensors header; for a folder, the same for every .safetensors, .json and
 * .txt file in it (two levels deep). 64 hex digits into out[65]. */
void ie_cache_model_identity(const char *path, char out[65]);

/* Payload (de)serialisation of EF-DDPM's maps: NULL / false when the bytes
 * are not a valid serialisation (shape and lengths are checked). */
void *ie_cache_pack_ef_ddpm(const ef_ddpm_maps *m, size_t *len);
ef_ddpm_maps *ie_cache_unpack_ef_ddpm(const void *data, size_t len);

/* Disk-level maintenance (used by tests): the total size of the entries in
 * the folder, and eviction down to the cap. */
int64_t ie_cache_disk_usage(const ie_cache *c);
void ie_cache_evict(ie_cache *c);

#endif
