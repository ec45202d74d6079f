/* Noise schedule and timestep grids; see schedule.h. */
#include "inversion/schedule.h"

#include <math.h>

void ie_schedule_sd(ie_schedule *s) {
    /* numpy.linspace(sqrt(0.00085), sqrt(0.012), 1000, dtype=float64) ** 2:
     * y = i*step + start, last point forced to stop. */
    const double start = sqrt(0.00085), stop = sqrt(0.012);
    const double step = (stop - start) / (IE_TRAIN_STEPS - 1);
    double prod = 1.0;
    for (int i = 0; i < IE_TRAIN_STEPS; i++) {
        double r = (i == IE_TRAIN_STEPS - 1) ? stop : (double)i * step + start;
        s->beta[i] = r * r;
        prod *= 1.0 - s->beta[i];
        s->ab[i] = prod;
    }
}

double ie_ab_at(const ie_schedule *s, int t) {
    if (t < 0) return s->ab[0];
    if (t >= IE_TRAIN_STEPS) return s->ab[IE_TRAIN_STEPS - 1];
    return s->ab[t];
}

double ie_ab_bdia(const ie_schedule *s, double t) {
    if (t < 0) return s->ab[0];
    double lo = floor(t), hi = ceil(t);
    if (lo == hi) return ie_ab_at(s, (int)lo);
    double rem = t - lo;
    /* the authors' code: low_alpha * rem + high_alpha * (1 - rem) (weights swapped) */
    return ie_ab_at(s, (int)lo) * rem + ie_ab_at(s, (int)hi) * (1.0 - rem);
}

double ie_ddpm_variance(const ie_schedule *s, int t, int n) {
    int prev = t - IE_TRAIN_STEPS / n;
    double a = ie_ab_at(s, t);
    double ap = ie_ab_at(s, prev); /* prev < 0 -> ab[0] */
    double b = 1.0 - a, bp = 1.0 - ap;
    return (bp / b) * (1.0 - a / ap);
}

int ie_grid_ddim(int n, int offset, int *out) {
    if (n < 1 || n > IE_TRAIN_STEPS) return -1;
    int step = IE_TRAIN_STEPS / n;
    for (int i = 0; i < n; i++) out[i] = (n - 1 - i) * step + offset;
    return n;
}

int ie_grid_bdia_edit(int n, int *out, double *delta) {
    if (delta) *delta = (double)IE_TRAIN_STEPS / (double)n;
    return ie_grid_ddim(n, 0, out);
}

int ie_grid_ldm(int n, int *out) {
    if (n < 1 || n > IE_TRAIN_STEPS) return -1;
    int c = IE_TRAIN_STEPS / n;
    int count = (IE_TRAIN_STEPS + c - 1) / c; /* len(range(0, 1000, c)) */
    for (int i = 0; i < count; i++) out[i] = (count - 1 - i) * c + 1;
    return count;
}

int ie_grid_lcm(int n, int orig, ie_lcm_formula formula, int *out) {
    if (orig < 1 || orig > IE_TRAIN_STEPS || n < 1 || n > orig) return -1;
    int k = IE_TRAIN_STEPS / orig;
    /* origin reversed: rev[j] = (orig - j) * k - 1 */
    if (formula == IE_LCM_OLD) {
        int skip = orig / n;
        for (int i = 0; i < n; i++) out[i] = (orig - i * skip) * k - 1;
    } else {
        /* numpy.linspace(0, orig, n, endpoint=False) = arange(n) * (orig/n), floored */
        double step = (double)orig / (double)n;
        for (int i = 0; i < n; i++) {
            int j = (int)floor((double)i * step);
            out[i] = (orig - j) * k - 1;
        }
    }
    return n;
}

int ie_grid_strength_start(int n, double strength) {
    if (!(strength > 0.0 && strength <= 1.0) || n < 1) return -1;
    int init = (int)((double)n * strength);
    if (init > n) init = n;
    if (init < 1) return -1;
    return n - init;
}
