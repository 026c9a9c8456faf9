/*
 * squatpipe PIPE SDDL: makes the named pipe PIPE before carrel does, as a
 * program in a patron's account can while the carrel service is down,
 * with the security descriptor SDDL ("-" for none), and serves it:
 * prints "squatting PIPE as process PID" once the pipe exists, then for every client
 * "client sent N bytes" once the client has gone, followed by what it sent
 * (bytes outside printable ASCII as '.'). Runs until killed. The Wine
 * tests of carrel's pipe checks use it (installer/wine/squat_test.go).
 */
#include <windows.h>
#include <sddl.h>
#include <stdio.h>

int wmain(int argc, wchar_t **argv)
{
	if (argc != 3) {
		fputs("usage: squatpipe PIPE SDDL\n", stderr);
		return 2;
	}
	SECURITY_ATTRIBUTES sa = {sizeof sa, NULL, FALSE}, *psa = NULL;
	if (wcscmp(argv[2], L"-") != 0) {
		if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(argv[2], SDDL_REVISION_1, &sa.lpSecurityDescriptor, NULL)) {
			fprintf(stderr, "squatpipe: SDDL %ls: error %lu\n", argv[2], GetLastError());
			return 1;
		}
		psa = &sa;
	}
	HANDLE h = CreateNamedPipeW(argv[1], PIPE_ACCESS_DUPLEX, PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
				    PIPE_UNLIMITED_INSTANCES, 65536, 65536, 0, psa);
	if (h == INVALID_HANDLE_VALUE) {
		fprintf(stderr, "squatpipe: creating %ls: error %lu\n", argv[1], GetLastError());
		return 1;
	}
	printf("squatting %ls as process %lu\n", argv[1], GetCurrentProcessId());
	fflush(stdout);
	static char got[1 << 20];
	for (;;) {
		if (!ConnectNamedPipe(h, NULL) && GetLastError() != ERROR_PIPE_CONNECTED) {
			fprintf(stderr, "squatpipe: ConnectNamedPipe: error %lu\n", GetLastError());
			return 1;
		}
		DWORD total = 0, n;
		while (total < sizeof got && ReadFile(h, got + total, sizeof got - total, &n, NULL))
			total += n;
		for (DWORD i = 0; i < total; i++)
			if (got[i] < 0x20 || got[i] > 0x7e)
				got[i] = '.';
		printf("client sent %lu bytes\n%.*s\n", total, (int)total, got);
		fflush(stdout);
		DisconnectNamedPipe(h);
	}
}
