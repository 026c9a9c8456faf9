/*
 * A stand-in for Windows' bcryptprimitives.dll, which Wine 8 lacks: Go
 * 1.22 and later load ProcessPrng from it at start, so without it every Go
 * program for Windows dies at once under Wine 8 ("bcryptprimitives.dll not
 * found"). Built by the Wine tests with mingw and copied into the test
 * prefix's system32. ProcessPrng fills the buffer from RtlGenRandom
 * (advapi32's SystemFunction036), Windows' documented CSPRNG entry point.
 * Tests only; never shipped.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
		if (!SystemFunction036(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
