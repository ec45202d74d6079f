/* Seeded, portable random numbers for the methods' noise.
 *
 * Generator: xoshiro256** 1.0 (Blackman & Vigna, public domain reference
 * algorithm), its 256-bit state filled from the 64-bit seed by splitmix64.
 * Uniforms: the top 53 bits of a draw, u = (x >> 11) * 2^-53 in [0, 1).
 * Gaussians: Marsaglia's polar method on pairs of uniforms in (-1, 1),
 *     s = u^2 + v^2 (rejecting s >= 1 and s == 0), f = sqrt(-2 ln(s) / s),
 *     yielding u*f then v*f,
 * computed in double and rounded once to float. ln() is our own (argument
 * reduction with frexp + a fixed atanh series, see rng.c), not libm's, and the
 * library is compiled with -ffp-contract=off, so only correctly rounded IEEE
 * operations (+ - * / sqrt) are involved: the same seed gives the same bits
 * on every IEEE-754 machine and compiler. A spare Gaussian is cached in the
 * state, so the sequence does not depend on how draws are split into calls.
 *
 * This is not torch.randn: results are comparable with the Python references
 * only statistically, unless the noise is imported.
 */
#ifndef INVEDIT_RNG_H
#define INVEDIT_RNG_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ie_rng {
    uint64_t s[4];
    double spare; /* cached second Gaussian of the last pair */
    int has_spare;
} ie_rng;

void ie_rng_seed(ie_rng *r, uint64_t seed);
uint64_t ie_rng_next(ie_rng *r);
/* Uniform double in [0, 1). */
double ie_rng_uniform(ie_rng *r);
/* One N(0, 1) sample in double. */
double ie_rng_normal(ie_rng *r);
/* n samples of N(0, 1), rounded to float, in order. */
void ie_rng_normal_fill(ie_rng *r, float *out, size_t n);

/* ln(x) for finite x > 0 using only + - * / and frexp/ldexp (exact), accurate
 * to about 1 ulp; exposed for the tests. */
double ie_rng_log(double x);

#ifdef __cplusplus
}
#endif
#endif
