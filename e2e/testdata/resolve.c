/* Resolves a name with the C library's getaddrinfo (search path and ndots from
 * /etc/resolv.conf) every second and prints what it found, for Shoal's e2e tests. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	for (;;) {
		struct addrinfo hints, *res, *p;
		memset(&hints, 0, sizeof hints);
		hints.ai_family = AF_INET;
		hints.ai_socktype = SOCK_STREAM;
		int err = getaddrinfo(argv[1], NULL, &hints, &res);
		if (err != 0) {
			printf("resolve %s: %s\n", argv[1], gai_strerror(err));
		} else {
			printf("resolve %s:", argv[1]);
			for (p = res; p != NULL; p = p->ai_next) {
				char buf[INET_ADDRSTRLEN];
				inet_ntop(AF_INET, &((struct sockaddr_in *)p->ai_addr)->sin_addr, buf, sizeof buf);
				printf(" %s", buf);
			}
			printf("\n");
			freeaddrinfo(res);
		}
		fflush(stdout);
		sleep(1);
	}
}
