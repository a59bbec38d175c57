/*
 * again: a GnuTLS client that makes gnutls_record_send fail with
 * GNUTLS_E_AGAIN and retries the GnuTLS way, with a NULL buffer, for
 * TestGnuTLSRetry. It sends N records of 16 KiB, record i filled with the
 * byte 'a' + i % 26, over a non-blocking socket with a small send buffer
 * to a server that reads late.
 *
 *   again PORT N    prints "again=K" (sends that hit E_AGAIN)
 *
 * The GnuTLS declarations are spelled out: the runtime library suffices.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct gnutls_session_int *gnutls_session_t;
typedef struct gnutls_certificate_credentials_st *gnutls_certificate_credentials_t;
#define GNUTLS_CLIENT (1 << 1)
#define GNUTLS_CRD_CERTIFICATE 1
#define GNUTLS_SHUT_WR 1
#define GNUTLS_E_AGAIN (-28)
int gnutls_global_init(void);
int gnutls_init(gnutls_session_t *session, unsigned int flags);
int gnutls_certificate_allocate_credentials(gnutls_certificate_credentials_t *res);
int gnutls_credentials_set(gnutls_session_t session, int type, void *cred);
int gnutls_set_default_priority(gnutls_session_t session);
void gnutls_transport_set_int2(gnutls_session_t session, int r, int s);
int gnutls_handshake(gnutls_session_t session);
ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t size);
int gnutls_bye(gnutls_session_t session, int how);
void gnutls_deinit(gnutls_session_t session);
const char *gnutls_strerror(int error);

static void check(long r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", what, gnutls_strerror(r));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	long n = atol(argv[2]);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(atoi(argv[1])) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	if (connect(fd, (void *)&a, sizeof(a))) {
		perror("connect");
		return 1;
	}
	gnutls_certificate_credentials_t cred;
	gnutls_session_t s;
	check(gnutls_global_init(), "init");
	check(gnutls_certificate_allocate_credentials(&cred), "credentials");
	check(gnutls_init(&s, GNUTLS_CLIENT), "session");
	check(gnutls_set_default_priority(s), "priority");
	check(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), "credentials");
	gnutls_transport_set_int2(s, fd, fd);
	check(gnutls_handshake(s), "handshake");
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

	static char rec[16384];
	long again = 0;
	for (long i = 0; i < n; i++) {
		memset(rec, 'a' + i % 26, sizeof(rec));
		ssize_t r = gnutls_record_send(s, rec, sizeof(rec));
		while (r == GNUTLS_E_AGAIN) {
			again++;
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			poll(&p, 1, 1000);
			r = gnutls_record_send(s, NULL, 0);
		}
		check(r, "send");
		if (r != sizeof(rec)) {
			fprintf(stderr, "short send %zd\n", r);
			return 1;
		}
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	check(gnutls_bye(s, GNUTLS_SHUT_WR), "bye");
	printf("again=%ld\n", again);
	gnutls_deinit(s);
	close(fd);
	return 0;
}
