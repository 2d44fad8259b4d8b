/*
 * aves shim: exported wrappers for DPDK's static-inline functions, which bindgen
 * cannot link to. Each is a one-line forward; see shim.c.
 */
#ifndef AVES_SHIM_H
#define AVES_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <stddef.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

int aves_errno(void);
unsigned aves_lcore_id(void);
uint64_t aves_rdtsc(void);

uint16_t aves_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t aves_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);

struct rte_mbuf *aves_pktmbuf_alloc(struct rte_mempool *mp);
void aves_pktmbuf_free(struct rte_mbuf *m);
char *aves_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len);
char *aves_pktmbuf_adj(struct rte_mbuf *m, uint16_t len);
char *aves_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int aves_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
uint8_t *aves_mbuf_data(struct rte_mbuf *m);

/* Offsets of the rte_mbuf fields the per-packet accessors read directly from Rust
 * (Mbuf::data, len, pkt_len, is_contiguous, prepend, trim): a call into this shim per access costs more than the read.
 * bindgen evaluates them; shim.c checks the field sizes the Rust reads assume. */
enum aves_mbuf_offsets {
    AVES_MBUF_OFF_BUF_ADDR = offsetof(struct rte_mbuf, buf_addr),
    AVES_MBUF_OFF_DATA_OFF = offsetof(struct rte_mbuf, data_off),
    AVES_MBUF_OFF_DATA_LEN = offsetof(struct rte_mbuf, data_len),
    AVES_MBUF_OFF_PKT_LEN = offsetof(struct rte_mbuf, pkt_len),
    AVES_MBUF_OFF_NB_SEGS = offsetof(struct rte_mbuf, nb_segs),
};
uint16_t aves_mbuf_data_len(const struct rte_mbuf *m);
uint32_t aves_mbuf_pkt_len(const struct rte_mbuf *m);
uint16_t aves_mbuf_nb_segs(const struct rte_mbuf *m);
uint16_t aves_mbuf_headroom(const struct rte_mbuf *m);
uint16_t aves_mbuf_tailroom(const struct rte_mbuf *m);
uint16_t aves_mbuf_port(const struct rte_mbuf *m);
void aves_mbuf_set_port(struct rte_mbuf *m, uint16_t port);

unsigned aves_ring_enqueue(struct rte_ring *r, void *obj);
unsigned aves_ring_dequeue(struct rte_ring *r, void **obj);
unsigned aves_ring_count(const struct rte_ring *r);
int aves_ring_enqueue_elem(struct rte_ring *r, void *obj, unsigned esize);
int aves_ring_dequeue_elem(struct rte_ring *r, void *obj, unsigned esize);



/* Link status without touching rte_eth_link's bitfields from Rust. */
int aves_link(uint16_t port, uint32_t *speed_mbps, int *up, int *full_duplex);
#endif
