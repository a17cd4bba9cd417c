"""An SSH library client (paramiko) through the gateway, for the SSH tests.

    client.py KNOWN_HOSTS PORT LOGIN exec COMMAND
    client.py KNOWN_HOSTS PORT LOGIN sftp LOCAL REMOTE BACK
    client.py KNOWN_HOSTS PORT LOGIN channels N

The token comes from GATEHOUSE_TOKEN and is sent as the password; the
gateway's host key must be the one in KNOWN_HOSTS. Prints what the command
wrote (stdout, then stderr prefixed with "stderr: ") and exits with its
status; sftp uploads LOCAL to REMOTE and downloads it again to BACK;
channels opens N session channels at once and prints how many opened.
"""
import os
import sys

import paramiko


def main():
    known_hosts, port, login, mode = sys.argv[1:5]
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        "127.0.0.1",
        port=int(port),
        username=login,
        password=os.environ["GATEHOUSE_TOKEN"],
        look_for_keys=False,
        allow_agent=False,
        timeout=20,
    )
    try:
        if mode == "exec":
            _, out, err = client.exec_command(sys.argv[5])
            sys.stdout.write(out.read().decode())
            for line in err.read().decode().splitlines():
                print("stderr: " + line)
            return out.channel.recv_exit_status()
        if mode == "channels":
            opened = []
            try:
                for _ in range(int(sys.argv[5])):
                    opened.append(client.get_transport().open_session())
            except paramiko.ChannelException as e:
                print("refused:", e)
            print("opened", len(opened))
            return 0
        local, remote, back = sys.argv[5:8]
        sftp = client.open_sftp()
        sftp.put(local, remote)
        sftp.get(remote, back)
        print("sftp ok", sftp.stat(remote).st_size)
        return 0
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
