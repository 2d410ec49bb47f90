/* mq_crc32.c — CRC-32 with zlib's polynomial (reflected 0x04C11DB7), the commitlog's body CRC,
 * computed with carry-less multiplication (PCLMULQDQ) when the CPU has it: the input is folded
 * 64 bytes at a time into four 128-bit lanes, the lanes into one, then reduced to 32 bits
 * (Barrett). The result equals zlib's crc32() for every input (tests/unit/test_common.c checks
 * lengths 0..3000 at every alignment against zlib). A length that is not a multiple of 16 ends
 * with a shuffled block (PSHUFB) instead of a byte loop. Inputs under 64 bytes and CPUs without
 * PCLMULQDQ use zlib itself. On 100-byte bodies this is about 9x zlib's speed.
 *
 * Fold constants (bit-reflected, for the zlib polynomial): x^(4*128+32) mod P and
 * x^(4*128-32) mod P for the 64-byte fold; x^(128+32), x^(128-32) mod P for the 16-byte fold;
 * x^64 mod P for 128 -> 64 bits; P itself and floor(x^64 / P) for the Barrett step. */
#include "common/mq_util.h"

#include <zlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define CLMUL_MIN 64

__attribute__((target("pclmul,ssse3,sse4.1"))) static uint32_t
fold_clmul(uint32_t state, const uint8_t *p, size_t n)
{
    /* n >= 64; state is the inverted running CRC. */
    const __m128i k_64b = _mm_set_epi64x(0x01c6e41596, 0x0154442bd4);
    const __m128i k_16b = _mm_set_epi64x(0x00ccaa009e, 0x01751997d0);
    const __m128i k_64 = _mm_set_epi64x(0, 0x0163cd6124);
    const __m128i barrett = _mm_set_epi64x(0x01f7011641, 0x01db710641);
    const __m128i lo32 = _mm_setr_epi32(-1, 0, -1, 0);
    const __m128i *v = (const __m128i *)p;
    __m128i l0 = _mm_xor_si128(_mm_loadu_si128(v), _mm_cvtsi32_si128((int)state));
    __m128i l1 = _mm_loadu_si128(v + 1), l2 = _mm_loadu_si128(v + 2), l3 = _mm_loadu_si128(v + 3);
    v += 4;
    n -= 64;
#define FOLD(lane, k, next)                                                                        \
    lane = _mm_xor_si128(                                                                          \
        _mm_xor_si128(_mm_clmulepi64_si128(lane, k, 0x00), _mm_clmulepi64_si128(lane, k, 0x11)),   \
        next)
    for (; n >= 64; n -= 64, v += 4) {
        FOLD(l0, k_64b, _mm_loadu_si128(v));
        FOLD(l1, k_64b, _mm_loadu_si128(v + 1));
        FOLD(l2, k_64b, _mm_loadu_si128(v + 2));
        FOLD(l3, k_64b, _mm_loadu_si128(v + 3));
    }
    FOLD(l0, k_16b, l1);
    FOLD(l0, k_16b, l2);
    FOLD(l0, k_16b, l3);
    for (; n >= 16; n -= 16, v++)
        FOLD(l0, k_16b, _mm_loadu_si128(v));
    if (n) {
        /* The last n (1..15) bytes: the lane's first n bytes become a block of their own, 16
         * bytes before the lane's other 16 - n bytes followed by the tail (the input's last 16
         * bytes give the tail without reading past it); that block is folded into this one. */
        static const uint8_t idx[48] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0,    1,    2,    3,
                                        4,    5,    6,    7,    8,    9,    10,   11,   12,   13,
                                        14,   15,   0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
        const __m128i to_head = _mm_loadu_si128((const __m128i *)(idx + n));      /* lane[j+n-16] */
        const __m128i to_rest = _mm_loadu_si128((const __m128i *)(idx + 16 + n)); /* lane[j+n] */
        const __m128i last = _mm_loadu_si128((const __m128i *)((const uint8_t *)v + n - 16));
        const __m128i from_last =
            _mm_cmpgt_epi8(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                           _mm_set1_epi8((char)(15 - n)));
        __m128i head = _mm_shuffle_epi8(l0, to_head);
        __m128i rest = _mm_blendv_epi8(_mm_shuffle_epi8(l0, to_rest), last, from_last);
        FOLD(head, k_16b, rest);
        l0 = head;
    }
#undef FOLD
    /* 128 -> 96 -> 64 bits */
    __m128i t = _mm_clmulepi64_si128(l0, k_16b, 0x10);
    l0 = _mm_xor_si128(_mm_srli_si128(l0, 8), t);
    t = _mm_srli_si128(l0, 4);
    l0 = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(l0, lo32), k_64, 0x00), t);
    /* Barrett reduction to 32 bits */
    t = _mm_clmulepi64_si128(_mm_and_si128(l0, lo32), barrett, 0x10);
    t = _mm_clmulepi64_si128(_mm_and_si128(t, lo32), barrett, 0x00);
    return (uint32_t)_mm_extract_epi32(_mm_xor_si128(l0, t), 1);
}

static int have_clmul(void)
{
    static int known = -1; /* a benign race: every thread computes the same value */
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    }
    return known;
}
#endif

static uint32_t crc_zlib(uint32_t crc, const uint8_t *p, size_t n)
{
    uLong c = crc;
    while (n > 0) { /* zlib takes uInt lengths */
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

uint32_t mq_crc32_update(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (n >= CLMUL_MIN && have_clmul())
        return ~fold_clmul(~crc, p, n);
#endif
    return n ? crc_zlib(crc, p, n) : crc;
}
