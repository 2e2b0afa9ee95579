// matmul: dense double-precision matrix multiply, the numeric kernel case.
// Tight loops of loads, multiplies and adds with no calls: the rewrite's
// cost here is the flag check at each loop header.
//
// Usage: matmul WORK. WORK is the number of N x N products; 0 runs without
// end. Prints a checksum that depends only on WORK.
#include <stdio.h>
#include <stdlib.h>

#define N 96

static double a[N][N], b[N][N], c[N][N];

static void multiply(void) {
	for (int i = 0; i < N; i++) {
		for (int j = 0; j < N; j++)
			c[i][j] = 0;
		for (int k = 0; k < N; k++) {
			double aik = a[i][k];
			for (int j = 0; j < N; j++)
				c[i][j] += aik * b[k][j];
		}
	}
}

int main(int argc, char **argv) {
	long work = argc > 1 ? atol(argv[1]) : 1;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++) {
			a[i][j] = (double)((i * 7 + j * 3) % 17) / 16.0;
			b[i][j] = (double)((i * 5 + j * 11) % 13) / 12.0;
		}
	double sum = 0;
	for (long r = 0; work == 0 || r < work; r++) {
		multiply();
		// Feed the product back, damped, so every round's work differs.
		double s = 0;
		for (int i = 0; i < N; i++)
			for (int j = 0; j < N; j++) {
				s += c[i][j];
				a[i][j] = c[i][j] / (N * 2.0) + 0.001 * (double)(r % 7);
			}
		sum += s / (N * N);
	}
	printf("matmul %ld %.6e\n", work, sum);
	return 0;
}
