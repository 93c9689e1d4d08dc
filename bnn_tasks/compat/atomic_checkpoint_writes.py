"""mmengine 0.10.7: a run killed while it saves a checkpoint can lose its checkpoints.

Three things in mmengine make a kill (``kill -9``, an OOM kill, a preempted job) during a save
destructive:
- ``LocalBackend.put``/``put_text`` (every checkpoint goes through them) write the target file
  in place, so a kill leaves a truncated ``iter_N.pth`` under the final name;
- ``CheckpointHook`` writes the ``last_checkpoint`` pointer in place too (an empty pointer);
- with ``max_keep_ckpts`` it deletes the oldest kept checkpoint *before* writing the new one,
  so with ``max_keep_ckpts=1`` a kill mid-save leaves no complete checkpoint at all.

Fix: local writes go through ``bnn_tasks.checkpoint.write_atomically`` (temporary name, fsync,
rename), and the hook writes the new checkpoint and the pointer before it deletes the
outdated one. Only local paths are changed; other backends run as before.
"""
import functools
import os.path as osp


def _atomic_put(original):
    @functools.wraps(original)
    def put(self, obj, filepath, *args, **kwargs):
        from bnn_tasks.checkpoint import write_atomically
        if args or kwargs.get('encoding', 'utf-8').lower() not in ('utf-8', 'utf8'):
            return original(self, obj, filepath, *args, **kwargs)
        write_atomically(str(filepath), obj)

    put._bnn_tasks_atomic = True
    return put


def _save_checkpoint_with_step(self, runner, step, meta):
    """mmengine 0.10.7's ``CheckpointHook._save_checkpoint_with_step``, reordered: save the new
    checkpoint, point ``last_checkpoint`` at it, then delete the one that falls out of
    ``max_keep_ckpts``."""
    from mmengine.dist import is_main_process

    from bnn_tasks.checkpoint import LAST_CHECKPOINT, write_atomically
    outdated = None
    if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            outdated = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids', list(self.keep_ckpt_ids))

    ckpt_filename = self.filename_tmpl.format(step)
    self.last_ckpt = self.file_backend.join_path(self.out_dir, ckpt_filename)
    runner.message_hub.update_info('last_ckpt', self.last_ckpt)
    runner.save_checkpoint(
        self.out_dir, ckpt_filename, self.file_client_args, save_optimizer=self.save_optimizer,
        save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
        backend_args=self.backend_args, **self.args)
    if not is_main_process():
        return
    write_atomically(osp.join(runner.work_dir, LAST_CHECKPOINT), self.last_ckpt)
    if outdated is not None:
        path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(outdated))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed saves folders
            self.file_backend.rmtree(path)


def apply() -> bool:
    import mmengine
    from mmengine.fileio.backends.local_backend import LocalBackend
    from mmengine.hooks import CheckpointHook
    if not getattr(LocalBackend.put, '_bnn_tasks_atomic', False):
        LocalBackend.put = _atomic_put(LocalBackend.put)
        LocalBackend.put_text = _atomic_put(LocalBackend.put_text)
    if mmengine.__version__ != '0.10.7':
        return f'skipped for the hook: written against mmengine 0.10.7, found {mmengine.__version__}'
    CheckpointHook._save_checkpoint_with_step = _save_checkpoint_with_step
    return True
