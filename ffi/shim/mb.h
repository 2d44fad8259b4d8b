/* aves multi-buffer HMAC shim over Intel's ipsec-mb (libIPSec_MB): hashes a whole
 * burst of messages with the job API, which interleaves independent messages in
 * SIMD lanes. */
#ifndef AVES_MB_H
#define AVES_MB_H
#include <stdint.h>

/* 0 = HMAC-MD5, 1 = HMAC-SHA-256 (tags truncated to 16 bytes). */
void *aves_mb_new(void);
void aves_mb_free(void *mgr);
/* Precomputes the HMAC inner/outer states (32 bytes each) for a key of ≤ 64 bytes. */
int aves_mb_hmac_prep(void *mgr, int alg, const uint8_t *key, uint32_t key_len,
                      uint8_t *ipad_state, uint8_t *opad_state);
/* Tags n messages (16 bytes each into tags); returns how many completed. */
uint32_t aves_mb_hmac_burst(void *mgr, int alg, const uint8_t *ipad_state,
                            const uint8_t *opad_state, uint32_t n,
                            const uint8_t *const *msgs, const uint32_t *lens,
                            uint8_t *tags);
#endif
