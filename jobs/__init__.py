"""Track jobs over a real job engine: Celery on a Redis broker, for `lofi worker` processes on any number of
hosts.

The bot side (`jobs.remote.BrokerTrackMaker`) is a `bot.resources.TrackMaker` like the in-process
`compose.pipeline.Composer`: it sends the same call (`jobs.wire.TrackJob`) through the broker, and a worker
(`jobs.worker`) runs it on its own `Composer` and returns the files in the result, so no file system is shared.
With no broker configured the bot calls its `Composer` directly: only the transport differs.
"""
