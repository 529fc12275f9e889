namespace Managed.Kernels.LinearAttention;

/// <summary>
/// The token grid of InLine's local term: <see cref="Prefix"/> leading tokens (class tokens)
/// without it, then <see cref="Height"/> x <see cref="Width"/> tokens row-major, convolved
/// depth-wise with a <see cref="Kernel"/> x <see cref="Kernel"/> window (the paper's 3).
/// </summary>
/// <param name="Height">Grid rows.</param>
/// <param name="Width">Grid columns.</param>
/// <param name="Kernel">k, odd (3 in the paper's code).</param>
/// <param name="Prefix">Leading tokens outside the grid (1 for a class token).</param>
public readonly record struct InLineLocal(int Height, int Width, int Kernel = 3, int Prefix = 0)
{
    /// <summary>Throws <see cref="ArgumentException"/> naming <paramref name="paramName"/>
    /// unless the sizes are positive, the kernel odd and prefix + height x width the length.
    /// </summary>
    public void Validate(LinearAttentionShape shape, string paramName)
    {
        if (Height < 1 || Width < 1 || Prefix < 0)
            throw new ArgumentException($"{this}: Height and Width must be positive and Prefix "
                + "not negative.", paramName);
        if (Kernel < 1 || Kernel % 2 == 0)
            throw new ArgumentException($"{this}: Kernel must be odd and positive.", paramName);
        if (Prefix + (long)Height * Width != shape.Length)
            throw new ArgumentException($"{this}: Prefix + Height x Width = "
                + $"{Prefix + (long)Height * Width} tokens; the length is {shape.Length}.",
                paramName);
    }
}
