/* The ordinary C hello, exactly as a textbook writes it: the exit status
 * ignores whether the output got anywhere. That is the point of the
 * comparison: on /dev/full this hello still exits 0 (its buffered output is
 * flushed, and lost, by exit()). */
#include <stdio.h>

int main(void)
{
    printf("Hello, world!\n");
    return 0;
}
