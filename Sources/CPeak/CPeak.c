// The FMA probe behind `moco bench step`'s "of the FMA peak" (CPeak.h). Kept in C: Swift
// cannot request AVX2/FMA code for one function (target attributes), and the project is built
// for baseline x86-64.
#include "CPeak.h"
#include <pthread.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int has_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

// The same with 16 lanes (384 FLOPs a round). Where AVX-512 runs as two 256-bit halves (AMD
// Zen 4) it reaches what the AVX2 chains do; with two 512-bit FMA units (Intel server cores)
// twice that.
__attribute__((target("avx512f"), noinline))
static float fma_chains_512(long iterations) {
    __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-7f);
    __m512 c0 = _mm512_set1_ps(0.0f), c1 = _mm512_set1_ps(0.1f), c2 = _mm512_set1_ps(0.2f), c3 = _mm512_set1_ps(0.3f);
    __m512 c4 = _mm512_set1_ps(0.4f), c5 = _mm512_set1_ps(0.5f), c6 = _mm512_set1_ps(0.6f), c7 = _mm512_set1_ps(0.7f);
    __m512 c8 = _mm512_set1_ps(0.8f), c9 = _mm512_set1_ps(0.9f), c10 = _mm512_set1_ps(1.0f), c11 = _mm512_set1_ps(1.1f);
    for (long i = 0; i < iterations; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b); c1 = _mm512_fmadd_ps(c1, a, b); c2 = _mm512_fmadd_ps(c2, a, b);
        c3 = _mm512_fmadd_ps(c3, a, b); c4 = _mm512_fmadd_ps(c4, a, b); c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b); c7 = _mm512_fmadd_ps(c7, a, b); c8 = _mm512_fmadd_ps(c8, a, b);
        c9 = _mm512_fmadd_ps(c9, a, b); c10 = _mm512_fmadd_ps(c10, a, b); c11 = _mm512_fmadd_ps(c11, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    return _mm512_reduce_add_ps(s);
}

// One thread: `iterations` rounds of 12 independent FMAs of 8 lanes (192 FLOPs a round).
__attribute__((target("avx2,fma"), noinline))
static float fma_chains(long iterations) {
    __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(1e-7f);
    __m256 c0 = _mm256_set1_ps(0.0f), c1 = _mm256_set1_ps(0.1f), c2 = _mm256_set1_ps(0.2f), c3 = _mm256_set1_ps(0.3f);
    __m256 c4 = _mm256_set1_ps(0.4f), c5 = _mm256_set1_ps(0.5f), c6 = _mm256_set1_ps(0.6f), c7 = _mm256_set1_ps(0.7f);
    __m256 c8 = _mm256_set1_ps(0.8f), c9 = _mm256_set1_ps(0.9f), c10 = _mm256_set1_ps(1.0f), c11 = _mm256_set1_ps(1.1f);
    for (long i = 0; i < iterations; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b); c1 = _mm256_fmadd_ps(c1, a, b); c2 = _mm256_fmadd_ps(c2, a, b);
        c3 = _mm256_fmadd_ps(c3, a, b); c4 = _mm256_fmadd_ps(c4, a, b); c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b); c7 = _mm256_fmadd_ps(c7, a, b); c8 = _mm256_fmadd_ps(c8, a, b);
        c9 = _mm256_fmadd_ps(c9, a, b); c10 = _mm256_fmadd_ps(c10, a, b); c11 = _mm256_fmadd_ps(c11, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[7];
}

typedef struct { double seconds; double gflops; int wide; volatile float sink; } probe_t;

static float chains(int wide, long n) { return wide ? fma_chains_512(n) : fma_chains(n); }

static void *probe_thread(void *arg) {
    probe_t *p = (probe_t *)arg;
    // Calibrate the round count to ~1/20 of the time, then run the rest in one timed chain.
    long n = 1 << 16;
    double t0 = now();
    p->sink = chains(p->wide, n);
    double dt = now() - t0;
    while (dt < p->seconds / 20) { n *= 2; t0 = now(); p->sink = chains(p->wide, n); dt = now() - t0; }
    long rounds = (long)((double)n * (p->seconds / dt));
    if (rounds < n) rounds = n;
    t0 = now();
    p->sink = chains(p->wide, rounds);
    dt = now() - t0;
    p->gflops = (double)rounds * 12.0 * (p->wide ? 16.0 : 8.0) * 2.0 / dt / 1e9;
    return 0;
}

const char *moco_fma_peak_isa(void) { return has_avx512() ? "avx512f" : (has_fma() ? "avx2+fma" : "none"); }

static double run_probe(int threads, double seconds, int wide) {
    pthread_t ids[256];
    probe_t probes[256];
    int started = 0;
    for (int i = 0; i < threads; i++) {
        probes[i].seconds = seconds; probes[i].gflops = 0; probes[i].wide = wide;
        if (pthread_create(&ids[i], 0, probe_thread, &probes[i]) != 0) break;
        started++;
    }
    double total = 0;
    for (int i = 0; i < started; i++) { pthread_join(ids[i], 0); total += probes[i].gflops; }
    return started == threads ? total : 0;
}

double moco_fma_peak_gflops(int threads, double seconds) {
    if (!has_fma() || threads < 1 || threads > 256) return 0;
    // The better of the 8- and 16-lane chains, half the time each where both exist.
    if (!has_avx512()) return run_probe(threads, seconds, 0);
    double narrow = run_probe(threads, seconds / 2, 0), wide = run_probe(threads, seconds / 2, 1);
    return narrow > wide ? narrow : wide;
}

#else
const char *moco_fma_peak_isa(void) { return "none"; }
double moco_fma_peak_gflops(int threads, double seconds) { (void)threads; (void)seconds; return 0; }
#endif
