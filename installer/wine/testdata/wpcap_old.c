/*
 * A stand-in for an old WinPcap's wpcap.dll (3.x, before libpcap 1.0):
 * it has pcap_open_live and pcap_lib_version but none of the
 * pcap_create/pcap_activate family that Npcap and carrel use. The Wine
 * tests put it in place of Wine's wpcap.dll to see that carrel starts,
 * records bookings and reports, only for capture, that Npcap is missing.
 * Tests only; never shipped. Nothing here is ever called but
 * pcap_lib_version.
 */
#include <stddef.h>

__declspec(dllexport) const char *pcap_lib_version(void)
{
	return "WinPcap version 3.1 (carrel test stand-in)";
}

__declspec(dllexport) void *pcap_open_live(const char *device, int snaplen, int promisc, int to_ms, char *errbuf)
{
	(void)device, (void)snaplen, (void)promisc, (void)to_ms, (void)errbuf;
	return NULL;
}

__declspec(dllexport) int pcap_findalldevs(void **alldevsp, char *errbuf)
{
	(void)errbuf;
	*alldevsp = NULL;
	return 0;
}
