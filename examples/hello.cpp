// Boots a VM, runs a few commands through the C++ API, and exits with the
// status of the last one.
//
//   build/examples/gondolin-hello
#include <gondolin/error.h>
#include <gondolin/vm.h>

#include <iostream>

int main() {
  try {
    gondolin::Vm vm = gondolin::Vm::create({});
    std::cerr << "booted " << vm.info().image_name << " in " << vm.info().boot_seconds << " s using "
              << gondolin::to_string(vm.info().accel) << "\n";

    // A shell string, output collected in memory.
    auto uname = vm.exec(gondolin::Command::shell("uname -sr"));
    std::cout << "guest kernel: " << uname.stdout_data;

    // Host-side file access, then a command that reads the file.
    vm.write_file("/tmp/numbers.txt", "3\n1\n2\n");
    auto sorted = vm.exec(std::vector<std::string>{"sort", "-n", "/tmp/numbers.txt"});
    std::cout << "sorted: " << sorted.stdout_data;

    // Streaming: stdin in, output as it arrives.
    gondolin::ExecOptions opts;
    opts.stdin = true;
    gondolin::Process p = vm.spawn(gondolin::Command::argv({"tr", "a-z", "A-Z"}), opts);
    p.write_stdin("shouting from the host\n");
    p.close_stdin();
    while (auto chunk = p.read()) std::cout << chunk->data;
    gondolin::ExitStatus status = p.wait();

    vm.close();
    return status.shell_status();
  } catch (const gondolin::Error& e) {
    std::cerr << "gondolin: " << e.what() << "\n";
    return 125;
  }
}
