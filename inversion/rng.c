/* xoshiro256** + Marsaglia polar Gaussians; see rng.h. */
#include "inversion/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ie_rng_seed(ie_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    r->spare = 0.0;
    r->has_spare = 0;
}

uint64_t ie_rng_next(ie_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ie_rng_uniform(ie_rng *r) { return (double)(ie_rng_next(r) >> 11) * 0x1.0p-53; }

/* ln(x) = e*ln2 + 2*atanh(f), x = m*2^e with m in [sqrt(1/2), sqrt(2)),
 * f = (m-1)/(m+1), |f| <= 0.1716, f^2 <= 0.02944. The series
 * 2(f + f^3/3 + f^5/5 + ...) truncated after f^25 has a remainder below
 * 2*0.1716*0.02944^13/27 ~ 1e-21: far below one ulp. ln2 is split into a
 * high part with trailing zero bits (so e*LN2_HI is exact) and a low part. */
double ie_rng_log(double x) {
    int e;
    double m = frexp(x, &e); /* x = m * 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double f = (m - 1.0) / (m + 1.0);
    double f2 = f * f;
    /* Horner over 1/(2k+1), k = 12 .. 0 */
    static const double c[13] = {
        1.0 / 25.0, 1.0 / 23.0, 1.0 / 21.0, 1.0 / 19.0, 1.0 / 17.0, 1.0 / 15.0, 1.0 / 13.0,
        1.0 / 11.0, 1.0 / 9.0,  1.0 / 7.0,  1.0 / 5.0,  1.0 / 3.0,  1.0,
    };
    double p = c[0];
    for (int k = 1; k < 13; k++) p = p * f2 + c[k];
    const double LN2_HI = 6.93147180369123816490e-01; /* 0x3FE62E42FEE00000 */
    const double LN2_LO = 1.90821492927058770002e-10; /* 0x3DEA39EF35793C76 */
    double de = (double)e;
    return de * LN2_HI + (2.0 * f * p + de * LN2_LO);
}

double ie_rng_normal(ie_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    for (;;) {
        double u = 2.0 * ie_rng_uniform(r) - 1.0;
        double v = 2.0 * ie_rng_uniform(r) - 1.0;
        double s = u * u + v * v;
        if (s >= 1.0 || s == 0.0) continue;
        double f = sqrt(-2.0 * ie_rng_log(s) / s);
        r->spare = v * f;
        r->has_spare = 1;
        return u * f;
    }
}

void ie_rng_normal_fill(ie_rng *r, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)ie_rng_normal(r);
}
