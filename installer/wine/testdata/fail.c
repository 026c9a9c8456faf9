/* fail: prints its arguments and exits 5 (access denied). The MSI test
 * puts it in place of icacls.exe to see that a failing SecureDataFolder
 * fails the install. */
#include <stdio.h>

int main(int argc, char **argv)
{
	fputs("fail:", stderr);
	for (int i = 1; i < argc; i++)
		fprintf(stderr, " %s", argv[i]);
	fputs("\n", stderr);
	return 5;
}
