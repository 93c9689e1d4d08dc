"""tools/results_table.py: rows come from the result files of real runs; the page shows them
verbatim (bnn_tasks.analysis.results_page)."""
import json
import os.path as osp

import pytest
import torch
from conftest import load_tool

from bnn_tasks.analysis import results_page
from bnn_tasks.analysis.logs import latest_run_curves

results_table = load_tool('results_table')


def _row(name, task, metrics, curve_key):
    return dict(config=f'configs/x/{name}.py', name=name, task=task, iterations=40, max_iters=50,
                budget_minutes=1.0, train_minutes=0.9, metrics=metrics,
                commands=[f'python tools/train.py configs/x/{name}.py', 'python tools/test.py'],
                train_curve=[[10, 2.0], [20, 1.5]], val_curve=[[20, {curve_key: 0.25}]],
                cpu='cpu', date='2026-11-22')


def test_curves_are_read_from_the_newest_log(tmp_path):
    for stamp, loss in (('20260101_000000', 9.0), ('20260102_000000', 1.0)):
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        (vis / 'scalars.json').write_text(
            json.dumps({'loss': loss, 'iter': 20, 'lr': 0.1}) + '\n'
            + json.dumps({'coco/bbox_mAP': 0.3, 'step': 20}) + '\n')
    train, val = latest_run_curves(str(tmp_path))
    assert train == [(20, 1.0)]
    assert val == [(20, {'coco/bbox_mAP': 0.3})]
    assert latest_run_curves(str(tmp_path / 'nothing')) == ([], [])


def test_markdown_and_curves_show_measured_rows(tmp_path):
    rows = [_row('det_a', 'detection', {'coco/bbox_mAP': 0.123, 'pascal_voc/mAP': 0.456},
                 'pascal_voc/mAP'),
            _row('seg_a', 'segmentation', {'mIoU': 61.5, 'mAcc': 70.1, 'aAcc': 95.0}, 'mIoU')]
    md = results_page.render_markdown(rows)
    assert '| `det_a` | 40 (50) | 0.9 | 0.123 | 0.456 |' in md
    assert '| `seg_a` | 40 (50) | 0.9 | 61.50 | 70.10 | 95.00 |' in md
    assert 'python tools/train.py configs/x/det_a.py' in md
    pre = dict(rows[1], name='seg_pt', pretrain=dict(minutes=2.0, val_accuracy=81.2),
               commands=['python tools/pretrain_backbone.py x'] + rows[1]['commands'])
    md = results_page.render_markdown([pre])
    assert '| `seg_pt` | 40 (50) | 2.9 (2.0 pretrain, 81% digit acc. + 0.9) | 61.50 |' in md
    assert '`python tools/pretrain_backbone.py x` then `python tools/train.py' in md
    # a two-stage row after pretraining: all three parts count
    staged = dict(pre, first_stage=dict(config='configs/x/seg_fp.py', minutes=1.4, iterations=30,
                                         metrics={'mIoU': 20.0}))
    md = results_page.render_markdown([staged])
    assert '| 4.3 (2.0 pretrain, 81% digit acc. + 1.4 float stage 1 + 0.9) |' in md
    md = results_page.write_results_page(rows, str(tmp_path))
    assert (tmp_path / 'results.md').read_text() == md
    # the hand-written discussion beside results.json ends the page
    (tmp_path / results_page.DISCUSSION_FILE).write_text('## Discussion\n\nwhy det_a misses\n')
    md = results_page.write_results_page(rows, str(tmp_path))
    assert md.endswith('## Discussion\n\nwhy det_a misses\n') and '| `det_a` |' in md
    for task in ('detection', 'segmentation'):
        assert (tmp_path / f'{task}_curves.png').stat().st_size > 1000


def test_rows_are_grouped_by_detector_with_the_float_twin_first():
    rows = [dict(_row(name, 'detection', {'pascal_voc/mAP': 0.5}, 'pascal_voc/mAP'),
                 config=f'configs/{family}/{name}.py')
            for family, name in (('bireal', 'ssd_b'), ('bireal', 'frcnn_b'),
                                 ('baselines', 'ssd_r18'), ('baselines', 'frcnn_r18'))]
    md = results_page.render_markdown(rows)
    order = [md.index(f'| `{n}` |') for n in ('frcnn_r18', 'frcnn_b', 'ssd_r18', 'ssd_b')]
    assert order == sorted(order)
    # the learning curves take one pair of panels per detector, in the same order
    groups = results_page.rows_by_group(rows + [_row('seg_a', 'segmentation', {}, 'mIoU')],
                                        'detection')
    assert {g: [r['name'] for r in rs] for g, rs in groups.items()} == {
        'frcnn': ['frcnn_r18', 'frcnn_b'], 'ssd': ['ssd_r18', 'ssd_b']}
    assert list(groups) == ['frcnn', 'ssd']


def test_binary_rows_show_their_share_of_the_float_twin_at_the_same_budget():
    def row(family, name, voc, budget=1.0, date='2026-11-22'):
        return dict(_row(name, 'detection', {'pascal_voc/mAP': voc}, 'pascal_voc/mAP'),
                    config=f'configs/{family}/{name}.py', budget_minutes=budget, date=date)
    rows = [row('baselines', 'frcnn_r18', 0.8), row('bireal', 'frcnn_b', 0.72),
            row('baselines', 'frcnn_r18_old', 0.4, date='2026-11-01'),
            row('baselines', 'frcnn_r18_long', 0.9, budget=2.0),
            row('bireal', 'ssd_b', 0.5), row('bireal', 'frcnn_b_short', 0.717)]
    md = results_page.render_markdown(rows)
    assert '| 0.720 | 90.0 % | cpu, 2026-11-22 |' in md  # the newest twin at the same budget
    assert '| 0.717 | 89.6 % |' in md  # not rounded up to a 90 % target
    assert '| 0.800 |  | cpu' in md  # a twin has no share
    assert '| 0.500 |  | cpu' in md  # no SSD twin measured
    assert 'VOC mAP@0.5 of the float twin' in md


def test_bf16_rows_are_compared_with_a_bf16_twin():
    def row(family, name, voc, amp):
        return dict(_row(name, 'detection', {'pascal_voc/mAP': voc}, 'pascal_voc/mAP'),
                    config=f'configs/{family}/{name}.py', amp=amp)
    rows = [row('baselines', 'ssd_r18', 0.8, False), row('baselines', 'ssd_r18_amp', 0.5, True),
            row('bireal', 'ssd_b', 0.72, False), row('bireal', 'ssd_b_amp', 0.45, True)]
    md = results_page.render_markdown(rows)
    assert '| 0.720 | 90.0 % |' in md and '| 0.450 | 90.0 % |' in md
    old_row = dict(rows[2])
    del old_row['amp']  # rows from before the option trained in float32
    assert results_page.float_twin(old_row, rows)['name'] == 'ssd_r18'


def _fake_train(work_dir, cmd, iters, refit_by):
    """What one tools/train.py run leaves in ``work_dir``; returns its result."""
    work_dir.mkdir(parents=True, exist_ok=True)
    budget = None
    if refit_by and '--refit-to-budget' in cmd:
        budget = {'refits': [dict(at_iteration=6, seconds_per_iter=1.5,
                                  old_max_iters=iters, new_max_iters=iters + refit_by)]}
        iters += refit_by
    vis = work_dir / '20260101_000000' / 'vis_data'
    vis.mkdir(parents=True, exist_ok=True)
    (vis / 'scalars.json').write_text(''.join(
        json.dumps({'loss': 1.0, 'iter': i}) + '\n' for i in range(10, iters + 1, 10)))
    checkpoint = work_dir / f'iter_{iters}.pth'
    torch.save({'meta': {'iter': iters}, 'state_dict': {}}, checkpoint)
    result = dict(checkpoint=str(checkpoint), work_dir=str(work_dir), iterations=iters,
                  max_iters=iters, seed=7, train_minutes=iters / 30, time_budget=budget)
    (work_dir / 'train_result.json').write_text(json.dumps(result))
    return result


def _fake_tools(monkeypatch, tmp_path, refit_by=0, binary=('configs/b/bin.py',)):
    """Stand in for tools/train.py and tools/test.py: record each command and write what the
    real ones leave behind (train_result.json / test_result.json, the training log, one
    checkpoint per 10 iterations; with ``refit_by`` a --refit-to-budget run re-fits itself to
    that many more iterations; ``--two-stage`` trains 40 % of the iterations (or
    ``--first-stage-fraction``) in ``stage1_float``, the rest in ``stage2_binary``, and names
    both stages (and ``--float-stage-activations``) in the result).
    ``binary``: the configs that build binary convs."""
    calls = []
    monkeypatch.setattr(results_table, 'REPO', str(tmp_path))

    def fake_run(cmd):
        calls.append(cmd)
        if cmd[1] == 'tools/pretrain_backbone.py':  # its summary: monkeypatch pretrain_summary
            return
        tool, work_dir = cmd[1], tmp_path / cmd[cmd.index('--work-dir') + 1]
        work_dir.mkdir(parents=True, exist_ok=True)
        if tool == 'tools/train.py':
            iters = int(cmd[cmd.index('--max-iters') + 1])
            if '--two-stage' not in cmd:
                _fake_train(work_dir, cmd, iters, refit_by)
                return
            fraction = float(cmd[cmd.index('--first-stage-fraction') + 1]) \
                if '--first-stage-fraction' in cmd else 0.4
            first = round(iters * fraction)
            stages = {'stage1_float': _fake_train(work_dir / 'stage1_float', cmd, first, 0),
                      'stage2_binary': _fake_train(work_dir / 'stage2_binary', cmd,
                                                   iters - first, refit_by)}
            for stage in stages:  # the configs as trained (float stage, student)
                (work_dir / stage / cmd[2].rsplit('/', 1)[-1]).write_text('')
            (work_dir / 'train_result.json').write_text(json.dumps(dict(
                stages['stage2_binary'], stages=stages, recipe='two_stage',
                first_stage_fraction=fraction,
                float_stage_activations=cmd[cmd.index('--float-stage-activations') + 1]
                if '--float-stage-activations' in cmd else 'clip',
                binary_stage_lr_factor=float(cmd[cmd.index('--binary-stage-lr-factor') + 1])
                if '--binary-stage-lr-factor' in cmd else 0.5,
                binarize_warmup=float(cmd[cmd.index('--binarize-warmup') + 1])
                if '--binarize-warmup' in cmd else None,
                distill=None if '--no-distill' in cmd else {
                    'teacher_config': cmd[cmd.index('--teacher-config') + 1]
                    if '--teacher-config' in cmd else 'float stage', 'options': dict(
                        kv.split('=') for kv in cmd[cmd.index('--distill-options') + 1:]
                        if '=' in kv) if '--distill-options' in cmd else {},
                    'float_stage': '--distill-float-stage' in cmd})))
        else:  # a checkpoint's VOC mAP is its iteration / 100, the final one 0.4
            checkpoint = tmp_path / cmd[3]
            voc = 0.4 if 'checkpoint_scores' not in str(work_dir) \
                else torch.load(checkpoint)['meta']['iter'] / 100
            (work_dir / 'test_result.json').write_text(json.dumps(
                {'metrics': {'coco/bbox_mAP': 0.2, 'pascal_voc/mAP': voc}}))
    monkeypatch.setattr(results_table, 'run', fake_run)
    monkeypatch.setattr(results_table, 'task_of', lambda config: 'detection')
    monkeypatch.setattr(results_table, 'is_binary', lambda config: config in binary)
    speeds = iter(range(100, 10000, 10))  # the machine's matmul GFLOP/s, before and after
    monkeypatch.setattr(results_table, 'matmul_gflops', lambda: float(next(speeds)))
    return calls


def _keep(work_dir, *iterations):
    """Checkpoints as the checkpoint hook and the time budget keep them."""
    for it in iterations:
        torch.save({'meta': {'iter': it}, 'state_dict': {}}, work_dir / f'iter_{it}.pth')


def test_machine_speed_is_a_measured_matmul_rate():
    from bnn_tasks.machine import matmul_gflops
    # 2 * 64^3 flops per product: a rate, neither zero nor an infinity from a zero timing
    rate = matmul_gflops(seconds=0.05, size=64)
    assert 0 < rate < 1e5


def test_two_stage_rows_train_by_the_recipe_and_score_the_float_stage(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    args = results_table.parse_args([
        'configs/b/bin.py', 'configs/b/twin.py', '--two-stage', '--fit-minutes', '2',
        '--val-interval', '0', '--max-iters', '30'])
    row = results_table.train_and_test('configs/b/bin.py', args)
    train, test_float, test_binary = calls
    assert train[:3] == ['python', 'tools/train.py', 'configs/b/bin.py']
    assert '--two-stage' in train and '--no-distill' not in train
    assert train[train.index('--budget-minutes') + 1] == '2.0' and '--refit-to-budget' in train
    # each stage is scored with its own config as trained (float stage, then the student)
    assert test_float[2:4] == ['work_dirs/results/bin/stage1_float/bin.py',
                               'work_dirs/results/bin/stage1_float/iter_12.pth']
    assert test_binary[2:4] == ['work_dirs/results/bin/stage2_binary/bin.py',
                                'work_dirs/results/bin/stage2_binary/iter_18.pth']
    assert (row['iterations'], row['train_minutes']) == (18, 0.6)
    assert (row['first_stage']['iterations'], row['first_stage']['minutes']) == (12, 0.4)
    assert row['commands'] == [' '.join(train), ' '.join(test_binary)]
    md = results_page.render_markdown([row])
    assert '| 1.0 (0.4 float stage 1 + 0.6) |' in md
    # the machine's speed just before and after the training, beside its name
    assert row['matmul_gflops'] == [100.0, 110.0] and ', matmul 100 / 110 GFLOP/s |' in md
    assert ('two-stage recipe, distilled from it: float stage 1 (40 % of the budget, '
            '12 iterations, 0.4 min; '
            'COCO mAP 0.200, VOC mAP@0.5 0.400 before binarization)') in md
    # the float twin in the same command is trained plainly at the same budget
    twin = results_table.train_and_test('configs/b/twin.py', args)
    assert '--two-stage' not in calls[-2] and twin['first_stage'] is None
    assert calls[-2][calls[-2].index('--budget-minutes') + 1] == '2.0'


def test_rows_without_distillation_sit_beside_the_distilled_ones(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    args = results_table.parse_args(['configs/b/bin.py', '--two-stage', '--no-distill',
                                     '--max-iters', '30'])
    row = results_table.train_and_test('configs/b/bin.py', args)
    assert row['name'] == 'bin_no-distill' and '--no-distill' in calls[0]
    assert 'work_dirs/results/bin_no-distill' in calls[0]
    assert 'two-stage recipe, no distillation' in results_page.render_markdown([row])


def _no_distill_row(calls, *options):
    """``(row, tools/train.py command)`` of a ``--no-distill`` recipe row with ``options``."""
    args = results_table.parse_args(['configs/b/bin.py', '--two-stage', '--no-distill',
                                     *options, '--max-iters', '30'])
    row = results_table.train_and_test('configs/b/bin.py', args)
    return row, [cmd for cmd in calls if cmd[1] == 'tools/train.py'][-1]


def test_a_non_default_split_is_its_own_row(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    row, train = _no_distill_row(calls, '--first-stage-fraction', '0.6')
    assert row['name'] == 'bin_no-distill_float-stage-0.6'
    assert train is calls[0]
    assert train[train.index('--first-stage-fraction') + 1] == '0.6'
    assert 'work_dirs/results/bin_no-distill_float-stage-0.6' in train
    assert ('two-stage recipe, no distillation: float stage 1 (60 % of the budget, '
            '18 iterations') in results_page.render_markdown([row])

    row, train = _no_distill_row(calls, '--float-stage-activations', 'binary')
    assert row['name'] == 'bin_no-distill_float-stage-binary-act'
    assert train[train.index('--float-stage-activations') + 1] == 'binary'
    assert ('no distillation: float stage 1 (float weights, binary activations, 40 % of the '
            'budget') in results_page.render_markdown([row])

    row, train = _no_distill_row(calls, '--binary-stage-lr-factor', '1')
    assert row['name'] == 'bin_no-distill_binary-lr-1'
    assert train[train.index('--binary-stage-lr-factor') + 1] == '1.0'
    assert ("no distillation, binary stage at 1x the config's learning rate: float stage 1"
            in results_page.render_markdown([row]))

    row, train = _no_distill_row(calls, '--binarize-warmup', '0.25')
    assert row['name'] == 'bin_no-distill_binarize-warmup-0.25'
    assert train[train.index('--binarize-warmup') + 1] == '0.25'
    assert row['recipe']['binarize_warmup'] == 0.25
    assert ('no distillation, binarized gradually over the first 25 % of the binary stage: '
            'float stage 1' in results_page.render_markdown([row]))


def test_amp_rows_train_in_bf16_and_are_their_own_rows(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    monkeypatch.setattr(results_table, 'pretrain_summary', lambda config: dict(
        minutes=1.0, iterations=50, val_accuracy=80.0, float_stage=True, amp=True))
    args = results_table.parse_args(['configs/b/bin.py', 'configs/baselines/twin.py',
                                     '--two-stage', '--no-distill', '--amp', '--max-iters', '30',
                                     '--pretrain-minutes', '1'])
    row = results_table.train_and_test('configs/b/bin.py', args)
    twin = results_table.train_and_test('configs/baselines/twin.py', args)
    assert (row['name'], twin['name']) == ('bin_no-distill_amp', 'twin_amp')
    assert row['amp'] and twin['amp']
    trains = [cmd for cmd in calls if cmd[1] == 'tools/train.py']
    assert all('--amp' in cmd for cmd in trains) and len(trains) == 2
    assert 'work_dirs/results/bin_no-distill_amp' in trains[0]
    # the backbone pretraining before each (all of the row's training) is in bfloat16 too
    pretrains = [cmd for cmd in calls if cmd[1] == 'tools/pretrain_backbone.py']
    assert len(pretrains) == 2 and all('--amp' in cmd for cmd in pretrains)
    # a reused pretraining's command says how it was trained
    args = results_table.parse_args(['configs/b/bin.py', '--two-stage', '--no-distill', '--amp',
                                     '--max-iters', '30', '--reuse-pretrain'])
    reused = results_table.train_and_test('configs/b/bin.py', args)
    assert reused['commands'][0].endswith('--max-iters 50 --float-stage --amp')


def test_distillation_options_reach_stage_2_and_name_their_row(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    args = results_table.parse_args(['configs/b/bin.py', '--two-stage', '--max-iters', '30',
                                     '--distill-options', 'feat_loss=relative'])
    row = results_table.train_and_test('configs/b/bin.py', args)
    assert row['name'] == 'bin_feat_loss-relative'
    train = calls[0]
    assert train[train.index('--distill-options') + 1] == 'feat_loss=relative'
    assert 'work_dirs/results/bin_feat_loss-relative' in train
    assert 'distilled from it (feat_loss=relative)' in results_page.render_markdown([row])
    with pytest.raises(SystemExit, match='--no-distill'):
        results_table.main(['configs/b/bin.py', '--two-stage', '--no-distill',
                            '--distill-options', 'feat_loss=relative', '--out', str(tmp_path)])


def test_fitted_rows_refit_themselves_and_show_their_own_step_time(monkeypatch, tmp_path):
    _fake_tools(monkeypatch, tmp_path, refit_by=20)
    args = results_table.parse_args(['configs/b/bin.py', '--fit-minutes', '2',
                                     '--val-interval', '0', '--max-iters', '58'])
    row = results_table.train_and_test('configs/b/bin.py', args)
    # the guess was 58 iterations; the run re-fitted itself to 78 and trained them
    assert row['iterations'] == row['max_iters'] == 78
    assert '| `bin` | 78 (78), 1.50 s/it |' in results_page.render_markdown([row])


def test_kept_checkpoints_become_validation_points_in_minutes(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    args = results_table.parse_args([
        'configs/b/bin.py', '--two-stage', '--fit-minutes', '2', '--val-interval', '0',
        '--score-checkpoints', '3', '--max-iters', '58'])
    stale = tmp_path / args.work_root / 'bin' / 'stage2_binary'  # an earlier run's: cleared
    stale.mkdir(parents=True)
    _keep(stale, 40)
    row = results_table.train_and_test('configs/b/bin.py', args)
    stage = row['first_stage']
    train = calls[0]  # 58 iterations: a checkpoint every 20, the last 3 (+1) kept
    assert train[-2:] == ['default_hooks.checkpoint.interval=20',
                          'default_hooks.checkpoint.max_keep_ckpts=4']
    run_dir = tmp_path / args.work_root / 'bin'
    _keep(run_dir / 'stage1_float', 10, 20)
    _keep(run_dir / 'stage2_binary', 30)
    (run_dir / 'stage2_binary' / 'broken.pth').write_bytes(b'')  # skipped, named
    n_calls = len(calls)
    results_table.add_checkpoint_scores(row, args.work_root)
    # every kept checkpoint but each stage's last (scored already), in its own folder, with
    # the stage's own config
    tested = [c[2:4] for c in calls[n_calls:]]
    assert [(c.rsplit('/', 2)[-2:], t.rsplit('/', 2)[-2:]) for c, t in tested] == [
        (['stage1_float', 'bin.py'], ['stage1_float', 'iter_10.pth']),
        (['stage1_float', 'bin.py'], ['stage1_float', 'iter_20.pth']),
        (['stage2_binary', 'bin.py'], ['stage2_binary', 'iter_30.pth'])]
    assert json.loads((run_dir / 'stage2_binary' / 'test_result.json').read_text())[
        'metrics']['pascal_voc/mAP'] == 0.4
    assert [(it, m['pascal_voc/mAP']) for it, m in stage['checkpoint_curve']] == [
        (10, 0.1), (20, 0.2)]
    assert [it for it, _ in row['checkpoint_curve']] == [30]
    results_table.add_checkpoint_scores(row, args.work_root)  # nothing new: nothing rerun
    assert len(calls) == n_calls + 3
    # stage 2 is drawn after stage 1, iterations at each stage's own pace
    _, vals = results_page.curve_points(dict(row, train_minutes=2.0), 2.0, 'pascal_voc/mAP',
                                        offset=1.0)
    assert vals == [(1.0 + 30 * 2.0 / 35, 0.3), (3.0, 0.4)]
    results_page.render_curves([dict(row, first_stage=dict(stage, minutes=1.0),
                                     train_minutes=2.0)], 'detection',
                               str(tmp_path / 'curves.png'))
    assert (tmp_path / 'curves.png').stat().st_size > 1000
    # after a json round trip (points become lists) a new checkpoint still joins in order
    row = json.loads(json.dumps(row))
    _keep(run_dir / 'stage2_binary', 33)
    results_table.add_checkpoint_scores(row, args.work_root)
    assert [it for it, _ in row['checkpoint_curve']] == [30, 33]


def test_another_teacher_reaches_stage_2_and_names_its_row(monkeypatch, tmp_path):
    calls = _fake_tools(monkeypatch, tmp_path)
    args_list = [
        'configs/b/bin.py', '--two-stage', '--max-iters', '30', '--teacher-config',
        'configs/b/twin.py', '--teacher-checkpoint', 'work_dirs/twin/iter_9.pth',
        '--distill-options', 'feat_weight=0']
    row = results_table.train_and_test('configs/b/bin.py', results_table.parse_args(args_list))
    assert row['name'] == 'bin_feat_weight-0_teacher-twin'
    train = calls[0]
    assert train[train.index('--teacher-config') + 1] == 'configs/b/twin.py'
    assert train[train.index('--teacher-checkpoint') + 1] == 'work_dirs/twin/iter_9.pth'
    md = results_page.render_markdown([row])
    assert 'distilled from `twin` (feat_weight=0): float stage 1' in md
    with pytest.raises(SystemExit, match='go together'):
        results_table.main(['configs/b/bin.py', '--two-stage', '--teacher-config',
                            'configs/b/twin.py', '--out', str(tmp_path)])
    # the same teacher for the float stage too: its own row
    both = results_table.parse_args(args_list + ['--distill-float-stage'])
    row = results_table.train_and_test('configs/b/bin.py', both)
    assert row['name'] == 'bin_feat_weight-0_teacher-twin_float-stage-too'
    assert '--distill-float-stage' in [c for c in calls if c[1] == 'tools/train.py'][-1]
    md = results_page.render_markdown([row])
    assert 'distilled from `twin` (feat_weight=0) in both stages: float stage 1' in md
    with pytest.raises(SystemExit, match='needs --teacher-config'):
        results_table.main(['configs/b/bin.py', '--two-stage', '--distill-float-stage',
                            '--out', str(tmp_path)])


def test_missing_config_is_refused_before_any_row_trains(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(results_table, 'train_and_test', lambda *a: calls.append(a))
    with pytest.raises(SystemExit, match="'configs/no_such_config.py'"):
        results_table.main([osp.join(results_table.REPO, 'configs/baselines/ssd256_r18_digits.py'),
                            'configs/no_such_config.py', '--out', str(tmp_path)])
    assert calls == []
