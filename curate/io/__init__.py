"""Reading inputs, downloading, decoding images and writing outputs."""
