/* A delay line for benchmarks on a kernel without netem: every packet the kernel hands
 * to NFQUEUE queue 0 is held for DELAY_MS, then accepted, in arrival order.
 *
 * Run it in a router namespace whose FORWARD chain sends packets to the queue
 * (iptables -A FORWARD -j NFQUEUE --queue-num 0): each packet crosses the router once, so
 * a delay of RTT/2 adds one round trip of RTT. bench/ssh_peers.py builds and uses it.
 *
 *     cc -O2 -o delayline delayline.c -lnetfilter_queue && ./delayline 25
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define RING (1u << 20)

static uint32_t ids[RING];
static uint64_t due[RING];
static unsigned head, tail;
static uint64_t delay_ns;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + t.tv_nsec;
}

static int on_packet(struct nfq_q_handle *qh, struct nfgenmsg *msg, struct nfq_data *nfa, void *data)
{
    struct nfqnl_msg_packet_hdr *ph = nfq_get_msg_packet_hdr(nfa);
    (void)msg;
    (void)data;
    if (!ph)
        return 0;
    uint32_t id = ntohl(ph->packet_id);
    if (tail - head >= RING)          /* never expected: hand it on at once rather than lose it */
        return nfq_set_verdict(qh, id, NF_ACCEPT, 0, NULL);
    ids[tail % RING] = id;
    due[tail % RING] = now_ns() + delay_ns;
    tail++;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DELAY_MS\n", argv[0]);
        return 2;
    }
    delay_ns = (uint64_t)(atof(argv[1]) * 1e6);
    struct sched_param priority = {.sched_priority = 50};
    if (sched_setscheduler(0, SCHED_FIFO, &priority) != 0)
        perror("delayline: SCHED_FIFO (continuing without)");

    struct nfq_handle *h = nfq_open();
    if (!h || nfq_bind_pf(h, AF_INET) < 0) {
        perror("delayline: nfq_open");
        return 1;
    }
    struct nfq_q_handle *qh = nfq_create_queue(h, 0, &on_packet, NULL);
    if (!qh || nfq_set_mode(qh, NFQNL_COPY_META, 0) < 0) {
        perror("delayline: nfq_create_queue");
        return 1;
    }
    nfq_set_queue_maxlen(qh, 65536);
    int fd = nfq_fd(h);
    int size = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size);
    printf("delaying every packet by %s ms\n", argv[1]);
    fflush(stdout);

    char buffer[65536];
    for (;;) {
        /* Sleep until the next packet is due (to the nanosecond: no spinning), or one arrives. */
        struct timespec wait, *timeout = NULL;
        if (head != tail) {
            uint64_t now = now_ns(), left = due[head % RING] > now ? due[head % RING] - now : 0;
            wait.tv_sec = left / 1000000000u;
            wait.tv_nsec = left % 1000000000u;
            timeout = &wait;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (ppoll(&p, 1, timeout, NULL) > 0) {
            int n;
            while ((n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT)) > 0)
                nfq_handle_packet(h, buffer, n);
        }
        uint64_t now = now_ns();
        while (head != tail && due[head % RING] <= now) {
            nfq_set_verdict(qh, ids[head % RING], NF_ACCEPT, 0, NULL);
            head++;
        }
    }
}
