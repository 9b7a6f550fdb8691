namespace PeftSharp.Export;

/// <summary>One module's low-rank update as a GGUF adapter holds it: ΔW = Scale · B·A, A (Rank, In), B (Out, Rank).</summary>
internal sealed record LoraFactors(string Module, int Rank, int In, int Out, float[] A, float[] B, double Scale);
