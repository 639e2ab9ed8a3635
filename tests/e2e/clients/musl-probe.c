/* musl-probe: resolves through musl libc the way a pod built on Alpine does. Built by
 * tests/e2e/clients.sh with `musl-gcc -static`; reads the pod's /etc/resolv.conf.
 *
 *   musl-probe gai NAME          getaddrinfo(NAME, AF_UNSPEC), search list and ndots applied:
 *                                one "addr ADDRESS" line per address, or "gai-error ..."
 *   musl-probe query NAME TYPE   res_query(NAME, C_IN, TYPE) (no EDNS, like all of musl's
 *                                resolver), then ns_initparse() of the reply and ns_parserr()
 *                                of every record. One line:
 *                                "query NAME TYPE len=L tc=0|1 rcode=R counts=QD/AN/NS/AR
 *                                 sections_end=E ns_initparse=ok parsed=N"
 *                                or "... ns_initparse=EMSGSIZE" (trailing bytes after the
 *                                last record, or a record running past the end), or
 *                                "query NAME TYPE res_query=error h_errno=..."
 * TYPE is A, AAAA, SRV or PTR. Exits 0 when the call and the parse succeeded. */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int gai(const char *name)
{
	struct addrinfo hints, *res, *ai;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int r = getaddrinfo(name, NULL, &hints, &res);
	if (r) {
		printf("gai-error %s: %d %s\n", name, r, gai_strerror(r));
		return 1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		char text[INET6_ADDRSTRLEN];
		const void *a = ai->ai_family == AF_INET
			? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
			: (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		if (!inet_ntop(ai->ai_family, a, text, sizeof text)) strcpy(text, "?");
		printf("addr %s\n", text);
	}
	freeaddrinfo(res);
	return 0;
}

static int type_of(const char *t)
{
	if (!strcmp(t, "A")) return ns_t_a;
	if (!strcmp(t, "AAAA")) return ns_t_aaaa;
	if (!strcmp(t, "SRV")) return ns_t_srv;
	if (!strcmp(t, "PTR")) return ns_t_ptr;
	return -1;
}

static int query(const char *name, const char *tname)
{
	static unsigned char buf[65536];
	int type = type_of(tname);
	if (type < 0) {
		printf("query %s %s unknown-type\n", name, tname);
		return 2;
	}
	int len = res_query(name, ns_c_in, type, buf, sizeof buf);
	if (len < 0) {
		printf("query %s %s res_query=error h_errno=%d (%s)\n", name, tname, h_errno,
		       hstrerror(h_errno));
		return 1;
	}
	if (len < NS_HFIXEDSZ) {
		printf("query %s %s len=%d short-header\n", name, tname, len);
		return 1;
	}
	int tc = (buf[2] >> 1) & 1, rcode = buf[3] & 15;
	int counts[4];
	for (int i = 0; i < 4; i++) counts[i] = buf[4 + 2 * i] << 8 | buf[5 + 2 * i];

	/* Where the records the header counts end: anything after that is trailing garbage. */
	const unsigned char *p = buf + NS_HFIXEDSZ, *eom = buf + len;
	int end = -1;
	for (int s = 0; s < 4; s++) {
		int r = counts[s] ? ns_skiprr(p, eom, (ns_sect)s, counts[s]) : 0;
		if (r < 0) break;
		p += r;
		if (s == 3) end = (int)(p - buf);
	}
	printf("query %s %s len=%d tc=%d rcode=%d counts=%d/%d/%d/%d sections_end=%d ", name, tname,
	       len, tc, rcode, counts[0], counts[1], counts[2], counts[3], end);

	ns_msg msg;
	errno = 0;
	if (ns_initparse(buf, len, &msg) < 0) {
		printf("ns_initparse=%s\n", errno == EMSGSIZE ? "EMSGSIZE" : strerror(errno));
		return 1;
	}
	int parsed = 0;
	for (int s = ns_s_an; s < ns_s_max; s++) {
		for (int i = 0; i < ns_msg_count(msg, (ns_sect)s); i++) {
			ns_rr rr;
			if (ns_parserr(&msg, (ns_sect)s, i, &rr) < 0) {
				printf("ns_initparse=ok ns_parserr=%s section=%d index=%d\n",
				       strerror(errno), s, i);
				return 1;
			}
			parsed++;
		}
	}
	printf("ns_initparse=ok parsed=%d\n", parsed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "gai")) return gai(argv[2]);
	if (argc == 4 && !strcmp(argv[1], "query")) return query(argv[2], argv[3]);
	fprintf(stderr, "usage: musl-probe gai NAME | musl-probe query NAME A|AAAA|SRV|PTR\n");
	return 2;
}
