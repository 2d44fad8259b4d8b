/* See shim.h. Compiled with the flags `pkg-config --cflags libdpdk` gives, so struct
 * layouts and inline code match the installed DPDK exactly. */
#include <string.h>
#include "shim.h"

int aves_errno(void) { return rte_errno; }
unsigned aves_lcore_id(void) { return rte_lcore_id(); }
uint64_t aves_rdtsc(void) { return rte_rdtsc(); }

uint16_t aves_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_rx_burst(port, queue, pkts, n);
}
uint16_t aves_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n) {
    return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *aves_pktmbuf_alloc(struct rte_mempool *mp) { return rte_pktmbuf_alloc(mp); }
void aves_pktmbuf_free(struct rte_mbuf *m) { rte_pktmbuf_free(m); }
char *aves_pktmbuf_prepend(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_prepend(m, len); }
char *aves_pktmbuf_adj(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_adj(m, len); }
char *aves_pktmbuf_append(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_append(m, len); }
int aves_pktmbuf_trim(struct rte_mbuf *m, uint16_t len) { return rte_pktmbuf_trim(m, len); }
uint8_t *aves_mbuf_data(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, uint8_t *); }
/* What ffi/src/mbuf.rs reads at the offsets of enum aves_mbuf_offsets. */
_Static_assert(sizeof(((struct rte_mbuf *)0)->buf_addr) == sizeof(void *), "buf_addr is a pointer");
_Static_assert(sizeof(((struct rte_mbuf *)0)->data_off) == 2, "data_off is 16 bits");
_Static_assert(sizeof(((struct rte_mbuf *)0)->data_len) == 2, "data_len is 16 bits");
_Static_assert(sizeof(((struct rte_mbuf *)0)->pkt_len) == 4, "pkt_len is 32 bits");
_Static_assert(sizeof(((struct rte_mbuf *)0)->nb_segs) == 2, "nb_segs is 16 bits");
uint16_t aves_mbuf_data_len(const struct rte_mbuf *m) { return m->data_len; }
uint32_t aves_mbuf_pkt_len(const struct rte_mbuf *m) { return m->pkt_len; }
uint16_t aves_mbuf_nb_segs(const struct rte_mbuf *m) { return m->nb_segs; }
uint16_t aves_mbuf_headroom(const struct rte_mbuf *m) { return rte_pktmbuf_headroom(m); }
uint16_t aves_mbuf_tailroom(const struct rte_mbuf *m) { return rte_pktmbuf_tailroom(m); }
uint16_t aves_mbuf_port(const struct rte_mbuf *m) { return m->port; }
void aves_mbuf_set_port(struct rte_mbuf *m, uint16_t port) { m->port = port; }

unsigned aves_ring_enqueue(struct rte_ring *r, void *obj) {
    return rte_ring_enqueue_burst(r, &obj, 1, NULL);
}
unsigned aves_ring_dequeue(struct rte_ring *r, void **obj) {
    return rte_ring_dequeue_burst(r, obj, 1, NULL);
}
unsigned aves_ring_count(const struct rte_ring *r) { return rte_ring_count(r); }
int aves_ring_enqueue_elem(struct rte_ring *r, void *obj, unsigned esize) {
    return rte_ring_enqueue_elem(r, obj, esize);
}
int aves_ring_dequeue_elem(struct rte_ring *r, void *obj, unsigned esize) {
    return rte_ring_dequeue_elem(r, obj, esize);
}

int aves_link(uint16_t port, uint32_t *speed_mbps, int *up, int *full_duplex) {
    struct rte_eth_link link;
    memset(&link, 0, sizeof(link));
    int rc = rte_eth_link_get_nowait(port, &link);
    if (rc < 0)
        return rc;
    *speed_mbps = link.link_speed;
    *up = link.link_status == RTE_ETH_LINK_UP;
    *full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
    return 0;
}
