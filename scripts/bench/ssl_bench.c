/*
 * ssl_bench: TLS over loopback TCP between a forked server and a client, to
 * time SSL_write with and without probes.
 *
 *   ssl_bench CERT KEY write N SIZE [RATE]  client does N SSL_write of SIZE
 *                                            bytes (at most RATE per second
 *                                            if given); prints ns per call
 *   ssl_bench CERT KEY download BYTES       server sends BYTES; prints MB/s
 *                                            seen by the reading client
 *   ssl_bench CERT KEY serve                 serve "write" clients forever on
 *                                            a loopback port it prints
 *   ssl_bench CERT KEY write N SIZE RATE PORT  client only, to a serve
 *                                            process (RATE 0: unpaced)
 *
 * serve and the remote client let the bench trap one side only: a serve
 * process linked statically has its own OpenSSL, which no probe is on.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The calling thread's CPU time: what a uprobe costs the traced program
 * (the trap and the BPF program run on its thread, in kernel mode). */
static double cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static void write_all(SSL *ssl, const char *buf, size_t n)
{
	while (n > 0) {
		int w = SSL_write(ssl, buf, n > (1 << 30) ? (1 << 30) : (int)n);
		if (w <= 0)
			die("SSL_write");
		buf += w;
		n -= w;
	}
}

static SSL_CTX *server_ctx(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) ||
	    !SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM))
		die("server cert");
	return ctx;
}

/* drain reads until the client's close_notify and answers it, so the
 * client knows everything was read. */
static void drain(SSL *ssl)
{
	static char buf[1 << 14];
	while (SSL_read(ssl, buf, sizeof(buf)) > 0)
		;
	SSL_shutdown(ssl);
}

_Noreturn static void serve(const char *cert, const char *key)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	if (ls < 0 || bind(ls, (void *)&a, sizeof(a)) || listen(ls, 16) || getsockname(ls, (void *)&a, &alen))
		die("listen");
	printf("port=%d\n", ntohs(a.sin_port));
	fflush(stdout);
	SSL_CTX *ctx = server_ctx(cert, key);
	for (;;) {
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			die("accept");
		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (SSL_accept(ssl) == 1)
			drain(ssl);
		SSL_free(ssl);
		close(fd);
	}
}

/* fork_server forks the server of one connection; a receives its address. */
static pid_t fork_server(const char *cert, const char *key, struct sockaddr_in *a, int download, long n)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	socklen_t alen = sizeof(*a);
	if (ls < 0 || bind(ls, (void *)a, sizeof(*a)) || listen(ls, 1) || getsockname(ls, (void *)a, &alen))
		die("listen");
	pid_t child = fork();
	if (child != 0) {
		close(ls);
		return child;
	}
	SSL_CTX *ctx = server_ctx(cert, key);
	int fd = accept(ls, NULL, NULL);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		die("SSL_accept");
	if (download) {
		static char buf[1 << 16];
		memset(buf, 'd', sizeof(buf));
		for (long left = n; left > 0; left -= sizeof(buf))
			write_all(ssl, buf, left < (long)sizeof(buf) ? left : (long)sizeof(buf));
		SSL_shutdown(ssl);
	} else {
		drain(ssl);
	}
	SSL_free(ssl);
	close(fd);
	_exit(0);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[3], "serve") == 0)
		serve(argv[1], argv[2]);
	if (argc < 5) {
		fprintf(stderr, "usage: %s CERT KEY write N SIZE [RATE [PORT]] | download BYTES | serve\n", argv[0]);
		return 2;
	}
	const char *mode = argv[3];
	int download = strcmp(mode, "download") == 0;
	long n = atol(argv[4]);
	long size = argc > 5 ? atol(argv[5]) : 0;
	double rate = argc > 6 ? atof(argv[6]) : 0;
	int remote = argc > 7 ? atoi(argv[7]) : 0;

	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	pid_t child = -1;
	if (remote)
		a.sin_port = htons(remote);
	else
		child = fork_server(argv[1], argv[2], &a, download, n);

	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (void *)&a, sizeof(a)))
		die("connect");
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1)
		die("SSL_connect");

	if (download) {
		static char buf[1 << 16];
		long got = 0;
		double t0 = now();
		int r;
		while (got < n && (r = SSL_read(ssl, buf, sizeof(buf))) > 0)
			got += r;
		double dt = now() - t0;
		printf("download_mb_per_s=%.1f bytes=%ld\n", got / dt / 1e6, got);
	} else {
		char *buf = malloc(size);
		memset(buf, 'w', size);
		double t0 = now(), next = t0, c0 = cpu(), dc = 0;
		for (long i = 0; i < n; i++) {
			if (rate > 0) {
				dc += cpu() - c0; /* the pacing spin is not the call's cost */
				next += 1.0 / rate;
				while (now() < next)
					;
				c0 = cpu();
			}
			write_all(ssl, buf, size);
		}
		dc += cpu() - c0;
		/* Time until the server has read it all: close_notify, then wait
		 * for the server's. Closing with unread data (session tickets)
		 * would reset the connection and drop the server's backlog. */
		SSL_shutdown(ssl);
		char sink[256];
		while (SSL_read(ssl, sink, sizeof(sink)) > 0)
			;
		double dt = now() - t0;
		printf("cpu_ns_per_write=%.0f ns_per_write=%.0f calls_per_s=%.0f\n", dc * 1e9 / n, dt * 1e9 / n, n / dt);
	}
	if (download)
		SSL_shutdown(ssl);
	SSL_free(ssl);
	close(fd);
	if (child > 0)
		waitpid(child, NULL, 0);
	return 0;
}
