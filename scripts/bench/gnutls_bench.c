/*
 * gnutls_bench: a GnuTLS client doing N gnutls_record_send calls of SIZE
 * bytes to an ssl_bench "serve" process, to time gnutls_record_send with
 * and without probes (scripts/bench-gnutls.sh).
 *
 *   gnutls_bench PORT N SIZE    prints ns per call
 *
 * The few GnuTLS declarations it needs are spelled out, so it builds
 * against the runtime library alone (no libgnutls28-dev).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

typedef struct gnutls_session_int *gnutls_session_t;
typedef struct gnutls_certificate_credentials_st *gnutls_certificate_credentials_t;
#define GNUTLS_CLIENT (1 << 1)
#define GNUTLS_CRD_CERTIFICATE 1
#define GNUTLS_SHUT_WR 1
int gnutls_global_init(void);
int gnutls_init(gnutls_session_t *session, unsigned int flags);
int gnutls_certificate_allocate_credentials(gnutls_certificate_credentials_t *res);
int gnutls_credentials_set(gnutls_session_t session, int type, void *cred);
int gnutls_set_default_priority(gnutls_session_t session);
void gnutls_transport_set_int2(gnutls_session_t session, int r, int s);
int gnutls_handshake(gnutls_session_t session);
ssize_t gnutls_record_send(gnutls_session_t session, const void *data, size_t size);
ssize_t gnutls_record_recv(gnutls_session_t session, void *data, size_t size);
int gnutls_bye(gnutls_session_t session, int how);
void gnutls_deinit(gnutls_session_t session);
const char *gnutls_strerror(int error);
int gnutls_error_is_fatal(int error);

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The calling thread's CPU time: what a uprobe costs the traced program
 * (the trap and the BPF program run on its thread, in kernel mode), and far
 * less sensitive than wall time to other load on a shared machine. */
static double cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void check(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", what, gnutls_strerror(r));
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s PORT N SIZE\n", argv[0]);
		return 2;
	}
	long n = atol(argv[2]);
	size_t size = atol(argv[3]);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(atoi(argv[1])) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
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
	check(gnutls_handshake(s), "handshake"); /* no verification: a benchmark */

	char *buf = malloc(size);
	memset(buf, 'w', size);
	double t0 = now(), c0 = cpu();
	for (long i = 0; i < n; i++)
		check(gnutls_record_send(s, buf, size), "send");
	double dc = cpu() - c0;
	/* Time until the server has read it all, as ssl_bench does. */
	check(gnutls_bye(s, GNUTLS_SHUT_WR), "bye");
	char sink[256];
	ssize_t r;
	while ((r = gnutls_record_recv(s, sink, sizeof(sink))) != 0)
		if (r < 0 && gnutls_error_is_fatal(r)) {
			fprintf(stderr, "recv: %s\n", gnutls_strerror(r));
			break;
		}
	double dt = now() - t0;
	printf("cpu_ns_per_write=%.0f ns_per_write=%.0f calls_per_s=%.0f\n", dc * 1e9 / n, dt * 1e9 / n, n / dt);
	gnutls_deinit(s);
	close(fd);
	return 0;
}
