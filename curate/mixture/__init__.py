"""Stage-2 task mixtures, packing into fixed-length sequences, and the stage-3 SFT export."""
