/*
 * pipeopen PIPE TIMEOUT_MS: waits until the named pipe PIPE exists and
 * takes a connection, connects, and disconnects at once; exits 0 then, 1
 * when TIMEOUT_MS passed first. The Wine tests use it after every start of
 * carrel (installer/wine/harness_test.go says why).
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int wmain(int argc, wchar_t **argv)
{
	if (argc != 3) {
		fputs("usage: pipeopen PIPE TIMEOUT_MS\n", stderr);
		return 2;
	}
	ULONGLONG deadline = GetTickCount64() + wcstoul(argv[2], NULL, 10);
	for (;;) {
		HANDLE h = CreateFileW(argv[1], GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
		if (h != INVALID_HANDLE_VALUE) {
			CloseHandle(h);
			return 0;
		}
		DWORD err = GetLastError();
		if (err != ERROR_FILE_NOT_FOUND && err != ERROR_PIPE_BUSY) {
			fprintf(stderr, "pipeopen: opening %ls: error %lu\n", argv[1], err);
			return 1;
		}
		if (GetTickCount64() >= deadline) {
			fprintf(stderr, "pipeopen: %ls took no connection before the deadline (error %lu)\n", argv[1], err);
			return 1;
		}
		/* Wait for the pipe: for a free instance when it exists, else a
		 * short pause before looking again. */
		if (err == ERROR_PIPE_BUSY)
			WaitNamedPipeW(argv[1], 100);
		else
			Sleep(20);
	}
}
