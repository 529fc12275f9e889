namespace Managed.Kernels.Matmul;

/// <summary>
/// The sizes of one linear layer call y = x W^T + b: x (m, k), W (n, k) as nn.Linear stores
/// it (row j holds output feature j's k input weights), bias (n), y (m, n); all dense
/// row-major.
/// </summary>
/// <param name="M">Rows of x and y (tokens).</param>
/// <param name="N">Output features: rows of W, columns of y.</param>
/// <param name="K">Input features: columns of x and W.</param>
public readonly record struct LinearShape(int M, int N, int K)
{
    /// <summary>m * k</summary>
    public long InputLength => (long)M * K;

    /// <summary>n * k</summary>
    public long WeightLength => (long)N * K;

    /// <summary>m * n</summary>
    public long OutputLength => (long)M * N;

    /// <summary>Multiply-adds counted as two: 2 * m * n * k.</summary>
    public double Flops => 2.0 * M * N * K;

    /// <summary>Throws <see cref="ArgumentException"/> naming the size that is not positive.
    /// </summary>
    public void Validate(string paramName = "shape")
    {
        Positive(M, "M (rows of x)", paramName);
        Positive(N, "N (output features)", paramName);
        Positive(K, "K (input features)", paramName);
    }

    private static void Positive(int value, string name, string paramName)
    {
        if (value <= 0)
            throw new ArgumentException($"{name} must be positive, got {value}.", paramName);
    }
}
