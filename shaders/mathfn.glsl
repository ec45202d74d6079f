// Accurate fp32 elementary functions for invedit's shaders.
//
// GLSL's built-ins only promise loose bounds in Vulkan (exp: 3 + 2|x| ULP,
// sin/cos: an absolute error of 2^-11 inside [-pi, pi] and nothing outside),
// and GLSL has no erf. These versions are accurate to about 1 ULP on every
// conforming device, and `precise` keeps compilers from reassociating the
// compensated steps.

// erf(x), max relative error ~1.7e-7 (checked in double against libm).
// |x| < 1: erf(x) = x·P(x²); 1 ≤ |x| < 4: erf = 1 - exp(Q(|x| - 2.5)), Q a fit
// of log(erfc) (Chebyshev fits, mpmath); |x| ≥ 4: ±1 in fp32.
float erf_acc(float x) {
    float z = abs(x);
    if (z < 1.0) {
        float s = x * x;
        float r = 7.8758750626854883e-5;
        r = r * s - 0.00080168642871658695;
        r = r * s + 0.005189087423433974;
        r = r * s - 0.026854212010626412;
        r = r * s + 0.11283594715160218;
        r = r * s - 0.37612626666720331;
        r = r * s + 1.1283791658483509;
        return x * r;
    }
    if (z >= 4.0) return sign(x);
    float t = z - 2.5;
    float q = -3.8347141422386892e-8;
    q = q * t - 6.6146368608273947e-8;
    q = q * t + 1.8297927568634064e-6;
    q = q * t - 1.2974525812988588e-5;
    q = q * t + 7.6969632637435111e-5;
    q = q * t - 0.00042070964826457244;
    q = q * t + 0.0021655017386971372;
    q = q * t - 0.010858163840072425;
    q = q * t - 0.94389373633003776;
    q = q * t - 5.3526807406699699;
    q = q * t - 7.8068152727272644;
    float r = 1.0 - exp(q);  // exp(q) < 0.16: its ULP-level error is harmless here
    return x < 0.0 ? -r : r;
}

// exp(x) for |x| < 80, within 1 ULP and correctly rounded but for ~1e-4 of
// arguments (like glibc's expf; every frequency of the SD/LCM embeddings comes
// out correctly rounded). Cody-Waite reduction x = k·ln2 + r1 + rl (r1 exact),
// exp(r1) = 1 + r1 + r1²/2 + r1³·P(r1) with r1² split exactly (Dekker) and the
// sum compensated; rl enters as rl·exp(r1).
float exp_acc(float x) {
    precise float k = roundEven(x * 1.44269504);
    precise float r1 = x - k * 0.693145751953125;       // exact (ln2_hi has 15 bits)
    precise float rl = -(k * 1.428606765330187045e-06); // ln2 - ln2_hi
    precise float cs = 4097.0 * r1;
    precise float h = cs - (cs - r1);
    precise float l = r1 - h;
    precise float sh = r1 * r1;
    precise float sl = ((h * h - sh) + 2.0 * h * l) + l * l;  // r1² = sh + sl exactly
    float pp = 1.0 / 362880.0;
    pp = pp * r1 + 1.0 / 40320.0;
    pp = pp * r1 + 1.0 / 5040.0;
    pp = pp * r1 + 1.0 / 720.0;
    pp = pp * r1 + 1.0 / 120.0;
    pp = pp * r1 + 1.0 / 24.0;
    pp = pp * r1 + 1.0 / 6.0;
    precise float qh = 0.5 * sh;
    precise float t = 0.5 * sl + sh * (r1 * pp);
    precise float e1 = ((1.0 + r1) + qh) + t;
    precise float small = t + rl * e1;
    precise float a = 1.0 + r1;
    precise float b = (1.0 - a) + r1;
    precise float c = a + qh;
    precise float d = (a - c) + qh;
    return ldexp(c + ((b + d) + small), int(k));
}

// sin(x) and cos(x) for |x| < 2^15·pi/2 with an absolute error ~1e-7: Cody-Waite
// reduction by pi/2 in four parts (the first three have 9 significant bits, so
// k·part is exact), then the Cephes minimax polynomials on [-pi/4, pi/4].
void sincos_acc(float x, out float s, out float c) {
    precise float k = roundEven(x * 0.636619772);
    precise float r = x - k * 1.5703125;
    r = r - k * 0.00048351287841796875;
    r = r - k * 0.000000313855707645416259765625;
    r = r - k * 6.0771005065061926e-11;
    float z = r * r;
    float sp = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    float cp = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z
               - 0.5 * z + 1.0;
    int q = int(k) & 3;
    if (q == 0) { s = sp; c = cp; }
    else if (q == 1) { s = cp; c = -sp; }
    else if (q == 2) { s = -sp; c = -cp; }
    else { s = -cp; c = sp; }
}

float gelu_erf(float x) { return 0.5 * x * (1.0 + erf_acc(x * 0.70710678118654752)); }
float silu(float x) { return x / (1.0 + exp(-x)); }
// tanh without overflow for large |x|.
float tanh_safe(float x) {
    float e = exp(-2.0 * abs(x));
    float r = (1.0 - e) / (1.0 + e);
    return x < 0.0 ? -r : r;
}
