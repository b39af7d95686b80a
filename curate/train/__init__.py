"""The reference model (ViT -> connector -> LM) and what training it needs: data streams, optimizer, devices,
evaluation and reports. The `curate train` loop itself is curate.commands.train."""
