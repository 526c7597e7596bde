#!/bin/bash
# Inside the VM tier's guest, as root, from tuxai-vm-run.service: fake NVIDIA device nodes,
# packaging/tuxai.service installed the way a server installs it, the scenarios, the logs.
# Everything lands in /mnt/tuxai-vm/out (read back by the host) and on the serial console.
set -u
VM=/mnt/tuxai-vm
OUT=$VM/out

main() {
    echo "tuxai-vm: kernel $(uname -r), $(nproc) CPUs, $(stat -fc %T /sys/fs/cgroup) on /sys/fs/cgroup," \
        "systemd $(systemctl --version | head -1 | cut -d' ' -f2), up $(cut -d' ' -f1 /proc/uptime) s"
    # Two GPUs with no driver behind them: opening one gives ENXIO where the cgroup allows it,
    # EPERM where the device policy denies it.
    mknod -m 666 /dev/nvidia0 c 195 0
    mknod -m 666 /dev/nvidia1 c 195 1
    mknod -m 666 /dev/nvidiactl c 195 255
    # The unit as packaged; the drop-in only appends the simulated inventory to its own ExecStart.
    install -m 644 "$VM/packaging/tuxai.service" /etc/systemd/system/tuxai.service
    exec_start=$(sed -n 's/^ExecStart=//p' /etc/systemd/system/tuxai.service)
    mkdir -p /etc/systemd/system/tuxai.service.d
    printf '[Service]\nExecStart=\nExecStart=%s --inventory %s\n' "$exec_start" "$VM/two-gpu-vm.yaml" \
        > /etc/systemd/system/tuxai.service.d/vm.conf
    systemctl enable --now tuxai  # enable reloads systemd: the unit and its drop-in are read
    /opt/tuxai/bin/python "$VM/scenarios.py" "$OUT/result.json"
    status=$?
    systemctl status --no-pager --lines=0 tuxai
    systemd-cgls --no-pager > "$OUT/cgroups.txt" 2>&1
    journalctl -b --no-pager -o short-monotonic > "$OUT/journal.txt" 2>&1
    echo "tuxai-vm: scenarios exited $status, up $(cut -d' ' -f1 /proc/uptime) s"
    return $status
}

main 2>&1 | tee "$OUT/run.log"
status=${PIPESTATUS[0]}
sync
exit "$status"
