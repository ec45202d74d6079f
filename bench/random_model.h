/* Random models for the benchmarks: SD-shaped weights without a download.
 *
 * bench_write_random writes every tensor a configuration needs for one
 * component (sd_expected_tensors) as one F16 safetensors file with diffusers
 * names (no component prefix), drawn from a seeded generator the way
 * PyTorch initialises layers: kernels and matrices uniform in
 * ±1/sqrt(fan_in), 1-D weights (norm gammas) 1 ± 0.1, biases ±1/sqrt(fan_in)
 * of the preceding weight. The numbers mean nothing; the shapes and the work
 * are exactly the real model's.
 */
#ifndef INVEDIT_BENCH_RANDOM_MODEL_H
#define INVEDIT_BENCH_RANDOM_MODEL_H
#include <stdbool.h>
#include <stdint.h>

#include "model/sd.h"

/* splitmix64; uniform in [-1, 1); N(0, 1) (Box-Muller) */
uint64_t bench_rng_next(uint64_t *s);
float bench_rng_sym(uint64_t *s);
float bench_rng_normal(uint64_t *s);

/* Writes component comp of mc to path; *params = number of parameters.
 * false (errno set) when the file can't be written. */
bool bench_write_random(const char *path, const sd_model_config *mc, sd_component comp, uint64_t seed, double *params);

/* A whole SD 1.5-shaped diffusers folder under dir (created): unet/, vae/,
 * text_encoder/ with random weights (shapes detected at load, no config.json)
 * and tokenizer/ copied from tokenizer_dir (any CLIP BPE vocabulary). Prints
 * what it wrote. false with a message in err on failure. */
bool bench_write_random_sd15(const char *dir, const char *tokenizer_dir, uint64_t seed, char *err, size_t errlen);
#endif
