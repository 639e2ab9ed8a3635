/* The socket-path limit for bench/run: a UDP server that does no lookup at all.
 *
 *   gcc -O2 -o limit bench/limit.c && ./limit 127.0.0.1 15505
 *
 * One blocking socket, one thread: recvmmsg up to 32 datagrams (as clusterdns's UDP loop
 * does), each answered with one fixed A record (the query's ID and question copied, QR and AA
 * set, RD kept, one A 10.96.0.1 TTL 30 whose owner is a compression pointer to the question),
 * all written back with one sendmmsg. Whatever the query asks, the answer is the same: the
 * cost of the socket path (system calls, copies, the kernel's UDP work) and nothing else, the
 * ceiling a server's queries per CPU-second can approach on this machine. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 32
#define SIZE 1232

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: limit ADDRESS PORT\n");
    return 2;
  }
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
  int fd = socket(AF_INET, SOCK_DGRAM, 0), buf = 4 << 20;
  if (fd < 0 || inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1 ||
      bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
    perror("limit");
    return 1;
  }
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf); /* as clusterdns's UDP_RECV_BUFFER */
  static unsigned char in[BATCH][SIZE], out[BATCH][SIZE];
  static struct sockaddr_in peer[BATCH];
  static struct iovec iin[BATCH], iout[BATCH];
  static struct mmsghdr rx[BATCH], tx[BATCH];
  for (int i = 0; i < BATCH; i++) {
    iin[i] = (struct iovec){in[i], SIZE};
    iout[i] = (struct iovec){out[i], 0};
  }
  for (;;) {
    for (int i = 0; i < BATCH; i++)
      rx[i].msg_hdr = (struct msghdr){.msg_name = &peer[i], .msg_namelen = sizeof peer[i], .msg_iov = &iin[i], .msg_iovlen = 1};
    int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL), m = 0;
    for (int i = 0; i < n; i++) {
      unsigned char *q = in[i], *r = out[m];
      size_t len = rx[i].msg_len, p = 12;
      if (len < 17 || (q[2] & 0x80)) continue; /* not a query */
      while (p < len && q[p] != 0) p += q[p] + 1; /* the question's name, uncompressed */
      if (p + 5 > len || p + 5 + 16 > SIZE) continue;
      p += 5; /* the root label, type and class */
      memcpy(r, q, p);
      r[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD as asked */
      r[3] = 0;                    /* NOERROR */
      memcpy(r + 4, "\0\1\0\1\0\0\0\0", 8); /* 1 question, 1 answer */
      static const unsigned char a[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 96, 0, 1};
      memcpy(r + p, a, sizeof a);
      iout[m].iov_len = p + sizeof a;
      tx[m].msg_hdr = (struct msghdr){.msg_name = &peer[i], .msg_namelen = rx[i].msg_hdr.msg_namelen, .msg_iov = &iout[m], .msg_iovlen = 1};
      m++;
    }
    for (int s = 0; s < m;) {
      int k = sendmmsg(fd, tx + s, m - s, 0);
      if (k <= 0) break;
      s += k;
    }
  }
}
