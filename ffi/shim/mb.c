/* See mb.h. */
#include <string.h>
#include <intel-ipsec-mb.h>
#include "mb.h"

void *aves_mb_new(void) {
    IMB_MGR *m = alloc_mb_mgr(0);
    if (m == NULL)
        return NULL;
    init_mb_mgr_auto(m, NULL);
    if (imb_get_errno(m) != 0) {
        free_mb_mgr(m);
        return NULL;
    }
    return m;
}

void aves_mb_free(void *mgr) { free_mb_mgr((IMB_MGR *)mgr); }

int aves_mb_hmac_prep(void *mgr, int alg, const uint8_t *key, uint32_t key_len,
                      uint8_t *ipad_state, uint8_t *opad_state) {
    IMB_MGR *m = mgr;
    uint8_t buf[64];
    if (key_len > 64)
        return -1;
    memset(buf, 0x36, sizeof(buf));
    for (uint32_t i = 0; i < key_len; i++)
        buf[i] ^= key[i];
    if (alg == 0)
        IMB_MD5_ONE_BLOCK(m, buf, ipad_state);
    else
        IMB_SHA256_ONE_BLOCK(m, buf, ipad_state);
    memset(buf, 0x5c, sizeof(buf));
    for (uint32_t i = 0; i < key_len; i++)
        buf[i] ^= key[i];
    if (alg == 0)
        IMB_MD5_ONE_BLOCK(m, buf, opad_state);
    else
        IMB_SHA256_ONE_BLOCK(m, buf, opad_state);
    memset(buf, 0, sizeof(buf));
    return imb_get_errno(m) == 0 ? 0 : -1;
}

static uint32_t completed(IMB_JOB *job) {
    return job != NULL && job->status == IMB_STATUS_COMPLETED;
}

uint32_t aves_mb_hmac_burst(void *mgr, int alg, const uint8_t *ipad_state,
                            const uint8_t *opad_state, uint32_t n,
                            const uint8_t *const *msgs, const uint32_t *lens,
                            uint8_t *tags) {
    IMB_MGR *m = mgr;
    uint32_t done = 0;
    for (uint32_t i = 0; i < n; i++) {
        IMB_JOB *job = IMB_GET_NEXT_JOB(m);
        job->cipher_mode = IMB_CIPHER_NULL;
        job->cipher_direction = IMB_DIR_ENCRYPT;
        job->chain_order = IMB_ORDER_HASH_CIPHER;
        job->hash_alg = alg == 0 ? IMB_AUTH_MD5 : IMB_AUTH_HMAC_SHA_256;
        job->src = msgs[i];
        job->dst = NULL;
        job->cipher_start_src_offset_in_bytes = 0;
        job->msg_len_to_cipher_in_bytes = 0;
        job->iv = NULL;
        job->iv_len_in_bytes = 0;
        job->enc_keys = NULL;
        job->dec_keys = NULL;
        job->key_len_in_bytes = 0;
        job->hash_start_src_offset_in_bytes = 0;
        job->msg_len_to_hash_in_bytes = lens[i];
        job->auth_tag_output = tags + 16 * (uint64_t)i;
        job->auth_tag_output_len_in_bytes = 16;
        job->u.HMAC._hashed_auth_key_xor_ipad = ipad_state;
        job->u.HMAC._hashed_auth_key_xor_opad = opad_state;
        job = IMB_SUBMIT_JOB(m);
        while (job != NULL) {
            done += completed(job);
            job = m->get_completed_job(m);
        }
    }
    IMB_JOB *job;
    while ((job = IMB_FLUSH_JOB(m)) != NULL)
        done += completed(job);
    return done;
}
