"""LoFi radio: an endless stream composed live, crossfaded piece to piece, played into a voice channel."""
